//! Rebuilds when a migration is added: `sqlx::migrate!` embeds the folders'
//! contents at compile time, but cargo does not otherwise notice new files.
//!
//! Builds the labelled corpora under `tests/` into the binary (see
//! `learn::builtin_corpus`): a desk retrains its model on them plus its
//! agents' corrections, and judges a new model on their held-out parts,
//! with nothing to install beside the binary.

use std::fmt::Write as _;
use std::path::Path;

const CORPORA: [&str; 4] = ["corpus", "blind", "blind2", "blind3"];

fn main() {
    println!("cargo:rerun-if-changed=migrations");
    let root = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let mut out = String::from(
        "/// A labelled corpus: its name, its labels CSV, and its files by name.\n\
         pub type Corpus = (&'static str, &'static str, &'static [(&'static str, &'static [u8])]);\n\
         pub static CORPORA: &[Corpus] = &[\n",
    );
    for name in CORPORA {
        let dir = Path::new(&root).join("tests").join(name);
        let labels = dir.join("labels.csv");
        println!("cargo:rerun-if-changed={}", labels.display());
        let text = std::fs::read_to_string(&labels)
            .unwrap_or_else(|e| panic!("{}: {e}", labels.display()));
        // The first column of every line but the header: the file.
        let mut files: Vec<&str> = text
            .lines()
            .skip(1)
            .filter_map(|l| l.split(',').next())
            .map(str::trim)
            .filter(|f| !f.is_empty())
            .collect();
        files.sort_unstable();
        files.dedup();
        let _ = writeln!(
            out,
            "    ({name:?}, include_str!({:?}), &[",
            labels.display().to_string()
        );
        for f in files {
            let path = dir.join(f);
            let _ = writeln!(
                out,
                "        ({f:?}, include_bytes!({:?})),",
                path.display().to_string()
            );
        }
        out.push_str("    ]),\n");
    }
    out.push_str("];\n");
    let dest = Path::new(&std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("corpora.rs");
    std::fs::write(&dest, out).unwrap_or_else(|e| panic!("{}: {e}", dest.display()));
}
