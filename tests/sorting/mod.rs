//! What the triage tests share: the fixtures' registry snapshot and the
//! sorting the daemon uses when its configuration names no rules or model
//! file (the built-in `config/rules.toml` and `config/model.bin`).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use servicedesk::learn::Sorting;
use servicedesk::registry::{self, Registry};

/// The built-in rules and model, loaded once per test binary.
pub static PRODUCTION: LazyLock<Sorting> = LazyLock::new(|| {
    let sorting = Sorting::builtin().expect("the built-in rules and model load");
    assert!(
        sorting.model.is_some(),
        "the binary has no built-in model; `servicedesk train` writes config/model.bin"
    );
    sorting
});

/// `tests/fixtures/triage`: `.eml` cases with the expected decision beside each.
pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/triage")
}

/// The registry snapshot every triage fixture is decided against.
pub fn registry() -> Registry {
    let dir = fixtures().join("registry");
    let cpath = dir.join("customers.csv");
    let customers =
        registry::parse_customers(&cpath, &std::fs::read_to_string(&cpath).unwrap()).unwrap();
    let names: Vec<String> = customers.iter().map(|c| c.name.clone()).collect();
    let ppath = dir.join("persons.csv");
    let persons = registry::parse_persons(&ppath, &std::fs::read_to_string(&ppath).unwrap(), |n| {
        names.iter().find(|c| c.eq_ignore_ascii_case(n)).cloned()
    })
    .unwrap();
    Registry::new(customers, persons)
}
