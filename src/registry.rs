//! Customers and their reference persons: the CSV formats, their validation,
//! the in-memory snapshot triage matches senders against, and the coverage
//! check (every customer has a general and a technical contact and one
//! reference person per campus).
//!
//! Parsing is pure; reading files is left to the caller, storing to the store.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use serde::Serialize;

use crate::domain::{ContractStatus, Language, Role};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Customer {
    pub name: String,
    pub status: ContractStatus,
    /// Campuses that each need a reference person; empty when not given.
    pub campuses: Vec<String>,
    /// The SLA tier sold to the customer (`[[sla.tiers]]`); `None`: none.
    pub sla: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Person {
    /// Lower case; the key senders are matched on.
    pub email: String,
    pub name: String,
    pub customer: String,
    pub campus: Option<String>,
    pub role: Role,
    pub language: Language,
}

/// A bad CSV line: the file, the line and what to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: line {line}: {message}")]
pub struct CsvError {
    pub file: String,
    pub line: u64,
    pub message: String,
}

/// The registry as triage sees it: who is a reference person of which customer.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    customers: HashMap<String, Customer>,
    persons: HashMap<String, Person>,
}

impl Registry {
    pub fn new(customers: Vec<Customer>, persons: Vec<Person>) -> Self {
        Registry {
            customers: customers
                .into_iter()
                .map(|c| (c.name.to_lowercase(), c))
                .collect(),
            persons: persons
                .into_iter()
                .map(|p| (p.email.to_lowercase(), p))
                .collect(),
        }
    }

    /// The reference person with this address (any case) and their customer.
    pub fn lookup(&self, address: &str) -> Option<(&Person, &Customer)> {
        let person = self.persons.get(&address.trim().to_lowercase())?;
        let customer = self.customers.get(&person.customer.to_lowercase())?;
        Some((person, customer))
    }

    pub fn customer(&self, name: &str) -> Option<&Customer> {
        self.customers.get(&name.to_lowercase())
    }

    pub fn persons(&self) -> impl Iterator<Item = &Person> {
        self.persons.values()
    }

    /// Every customer, by name.
    pub fn customers(&self) -> Vec<&Customer> {
        let mut all: Vec<&Customer> = self.customers.values().collect();
        all.sort_by(|a, b| a.name.cmp(&b.name));
        all
    }

    /// Every gap in coverage, one line each, sorted by customer.
    pub fn coverage_gaps(&self) -> Vec<String> {
        let mut by_customer: BTreeMap<&str, Vec<&Person>> = BTreeMap::new();
        for c in self.customers.values() {
            by_customer.entry(c.name.as_str()).or_default();
        }
        for p in self.persons.values() {
            if let Some(c) = self.customer(&p.customer) {
                by_customer.entry(c.name.as_str()).or_default().push(p);
            }
        }
        let mut gaps = Vec::new();
        for (name, persons) in by_customer {
            let customer = self.customer(name).expect("listed from customers");
            if !persons.iter().any(|p| p.role == Role::General) {
                gaps.push(format!("{name}: no general reference person"));
            }
            if !persons.iter().any(|p| p.role == Role::Technical) {
                gaps.push(format!("{name}: no technical contact"));
            }
            for campus in &customer.campuses {
                let covered = persons.iter().any(|p| {
                    p.role == Role::Campus
                        && p.campus
                            .as_deref()
                            .is_some_and(|c| c.eq_ignore_ascii_case(campus))
                });
                if !covered {
                    gaps.push(format!("{name}: campus {campus} has no reference person"));
                }
            }
        }
        gaps
    }
}

fn reader(text: &str) -> csv::Reader<&[u8]> {
    csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .flexible(false)
        .from_reader(text.as_bytes())
}

/// Column positions by header name, refusing files that lack a required column.
fn columns(
    file: &str,
    headers: &csv::StringRecord,
    required: &[&str],
) -> Result<HashMap<String, usize>, CsvError> {
    let map: HashMap<String, usize> = headers
        .iter()
        .enumerate()
        .map(|(i, h)| {
            (
                h.trim().trim_start_matches('\u{feff}').to_ascii_lowercase(),
                i,
            )
        })
        .collect();
    let missing: Vec<&str> = required
        .iter()
        .filter(|r| !map.contains_key(**r))
        .copied()
        .collect();
    if !missing.is_empty() {
        return Err(CsvError {
            file: file.into(),
            line: 1,
            message: format!(
                "the header lacks {}; the first line must name the columns {}",
                missing.join(", "),
                required.join(",")
            ),
        });
    }
    Ok(map)
}

fn record_error(file: &str, e: csv::Error) -> CsvError {
    let line = e.position().map(|p| p.line()).unwrap_or(0);
    let message = match e.kind() {
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => format!(
            "{len} fields where the header has {expected_len}; quote values that contain commas"
        ),
        csv::ErrorKind::Utf8 { .. } => "not valid UTF-8; save the file as UTF-8".into(),
        _ => e.to_string(),
    };
    CsvError {
        file: file.into(),
        line,
        message,
    }
}

/// Parses a customers CSV (`customer,contract_status[,campuses][,sla]`,
/// more columns allowed), taking any text in `sla`; see [`parse_customers_for`].
///
/// # Errors
///
/// The first bad line, with its number and the fix; nothing is returned then.
pub fn parse_customers(file: &Path, text: &str) -> Result<Vec<Customer>, CsvError> {
    parse_customers_for(file, text, None)
}

/// Parses a customers CSV whose optional `sla` column must name one of
/// the policy's tiers (written as the configuration spells it), or be empty.
///
/// # Errors
///
/// The first bad line, with its number and the fix; nothing is returned then.
pub fn parse_customers_for(
    file: &Path,
    text: &str,
    tiers: Option<&crate::sla::Policy>,
) -> Result<Vec<Customer>, CsvError> {
    let name = file.display().to_string();
    let mut rdr = reader(text);
    let headers = rdr.headers().map_err(|e| record_error(&name, e))?.clone();
    let col = columns(&name, &headers, &["customer", "contract_status"])?;
    let mut seen: HashMap<String, u64> = HashMap::new();
    let mut out = Vec::new();
    for rec in rdr.records() {
        let rec = rec.map_err(|e| record_error(&name, e))?;
        let line = rec.position().map(|p| p.line()).unwrap_or(0);
        let err = |message: String| CsvError {
            file: name.clone(),
            line,
            message,
        };
        let get = |c: &str| col.get(c).and_then(|i| rec.get(*i)).unwrap_or("").trim();
        let customer = get("customer");
        if customer.is_empty() {
            return Err(err("the customer name is empty".into()));
        }
        let status = ContractStatus::parse(get("contract_status")).ok_or_else(|| {
            err(format!(
                "contract_status {:?} must be active or suspended",
                get("contract_status")
            ))
        })?;
        if let Some(first) = seen.insert(customer.to_lowercase(), line) {
            return Err(err(format!(
                "customer {customer:?} is listed twice (first on line {first})"
            )));
        }
        let campuses = get("campuses")
            .split(';')
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .map(str::to_string)
            .collect();
        let sla = match (get("sla"), tiers) {
            ("", _) => None,
            (tier, None) => Some(tier.to_string()),
            (tier, Some(policy)) => Some(
                policy
                    .tier(tier)
                    .ok_or_else(|| {
                        err(if policy.tiers.is_empty() {
                            format!(
                                "sla {tier:?}: the configuration's [sla] defines no tiers: add [[sla.tiers]] with name = {tier:?} to the configuration, or leave the column empty"
                            )
                        } else {
                            format!(
                                "sla {tier:?} is not a tier of the configuration's [sla]: use one of {}, or leave it empty for none",
                                policy.tier_names()
                            )
                        })
                    })?
                    .name
                    .clone(),
            ),
        };
        out.push(Customer {
            name: customer.to_string(),
            status,
            campuses,
            sla,
        });
    }
    Ok(out)
}

/// Parses a persons CSV (`email,name,customer,campus,role,language`).
/// `known_customers` (lower-case names) must hold every customer named.
///
/// # Errors
///
/// The first bad line, with its number and the fix; nothing is returned then.
pub fn parse_persons(
    file: &Path,
    text: &str,
    known_customer: impl Fn(&str) -> Option<String>,
) -> Result<Vec<Person>, CsvError> {
    let name = file.display().to_string();
    let mut rdr = reader(text);
    let headers = rdr.headers().map_err(|e| record_error(&name, e))?.clone();
    let col = columns(
        &name,
        &headers,
        &["email", "name", "customer", "campus", "role", "language"],
    )?;
    let mut seen: HashMap<String, u64> = HashMap::new();
    let mut out = Vec::new();
    for rec in rdr.records() {
        let rec = rec.map_err(|e| record_error(&name, e))?;
        let line = rec.position().map(|p| p.line()).unwrap_or(0);
        let err = |message: String| CsvError {
            file: name.clone(),
            line,
            message,
        };
        let get = |c: &str| col.get(c).and_then(|i| rec.get(*i)).unwrap_or("").trim();
        let email = get("email").to_lowercase();
        let valid = email.split_once('@').is_some_and(|(l, d)| {
            !l.is_empty() && d.contains('.') && !email.contains(char::is_whitespace)
        });
        if !valid {
            return Err(err(format!("{:?} is not an e-mail address", get("email"))));
        }
        let role = Role::parse(get("role")).ok_or_else(|| {
            err(format!(
                "role {:?} must be campus, general or technical",
                get("role")
            ))
        })?;
        let campus = get("campus");
        let campus = match (role, campus.is_empty()) {
            (Role::Campus, true) => {
                return Err(err(
                    "role campus needs the campus name in the campus column".into(),
                ))
            }
            (Role::Campus, false) => Some(campus.to_string()),
            (_, true) => None,
            (_, false) => {
                return Err(err(format!(
                    "campus must be empty for the {} contact (got {campus:?})",
                    role.as_str()
                )))
            }
        };
        let language = Language::parse(get("language")).ok_or_else(|| {
            err(format!(
                "language {:?} must be nl, fr, en or de",
                get("language")
            ))
        })?;
        let customer = known_customer(get("customer")).ok_or_else(|| {
            err(format!(
                "customer {:?} is unknown; import it with `customers import` first",
                get("customer")
            ))
        })?;
        if let Some(first) = seen.insert(email.clone(), line) {
            return Err(err(format!(
                "{email} is listed twice (first on line {first})"
            )));
        }
        out.push(Person {
            email,
            name: get("name").to_string(),
            customer,
            campus,
            role,
            language,
        });
    }
    Ok(out)
}

/// The customers as `customers import` reads them, by name (with their
/// SLA tier when any has one).
pub fn customers_csv(registry: &Registry) -> String {
    let mut w = csv::WriterBuilder::new()
        .terminator(csv::Terminator::Any(b'\n'))
        .from_writer(Vec::new());
    // The `sla` column only when a customer has a tier: a registry
    // without SLAs exports as it always did.
    let customers = registry.customers();
    let with_sla = customers.iter().any(|c| c.sla.is_some());
    let mut header = vec!["customer", "contract_status", "campuses"];
    if with_sla {
        header.push("sla");
    }
    let _ = w.write_record(&header);
    for c in customers {
        let campuses = c.campuses.join(";");
        let mut row = vec![c.name.as_str(), c.status.as_str(), &campuses];
        if with_sla {
            row.push(c.sla.as_deref().unwrap_or(""));
        }
        let _ = w.write_record(&row);
    }
    String::from_utf8(w.into_inner().unwrap_or_default()).unwrap_or_default()
}

/// The registered persons as `persons import` reads them, by customer and address.
pub fn persons_csv(registry: &Registry) -> String {
    let mut persons: Vec<&Person> = registry.persons().collect();
    persons.sort_by(|a, b| (&a.customer, &a.email).cmp(&(&b.customer, &b.email)));
    let mut w = csv::WriterBuilder::new()
        .terminator(csv::Terminator::Any(b'\n'))
        .from_writer(Vec::new());
    let _ = w.write_record(["email", "name", "customer", "campus", "role", "language"]);
    for p in persons {
        let _ = w.write_record([
            p.email.as_str(),
            &p.name,
            &p.customer,
            p.campus.as_deref().unwrap_or(""),
            p.role.as_str(),
            p.language.as_str(),
        ]);
    }
    String::from_utf8(w.into_inner().unwrap_or_default()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known(name: &str) -> Option<String> {
        (name.eq_ignore_ascii_case("WZC Ter Beke")).then(|| "WZC Ter Beke".to_string())
    }

    #[test]
    fn customers_with_campuses() {
        let c = parse_customers(
            Path::new("c.csv"),
            "customer,contract_status,campuses,notes\nWZC Ter Beke,active,Gent;Aalst,x\nHome X,SUSPENDED,,\n",
        )
        .unwrap();
        assert_eq!(c[0].campuses, vec!["Gent", "Aalst"]);
        assert_eq!(c[1].status, ContractStatus::Suspended);
    }

    #[test]
    fn a_customers_tier_is_one_of_the_configuration_or_none() {
        let policy = crate::sla::Policy {
            tiers: vec![crate::sla::Tier {
                name: "gold".into(),
                targets: crate::sla::Targets {
                    first_response: 60,
                    resolution: 480,
                },
                rules: Vec::new(),
            }],
            ..crate::sla::Policy::default()
        };
        let text = "customer,contract_status,sla\nA,active,GOLD\nB,active,\n";
        let c = parse_customers_for(Path::new("c.csv"), text, Some(&policy)).unwrap();
        assert_eq!(c[0].sla.as_deref(), Some("gold"));
        assert_eq!(c[1].sla, None);
        let e = parse_customers_for(
            Path::new("c.csv"),
            "customer,contract_status,sla\nA,active,gold\nB,active,silver\n",
            Some(&policy),
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "c.csv: line 3: sla \"silver\" is not a tier of the configuration's [sla]: use one of gold, or leave it empty for none"
        );
        let e = parse_customers_for(
            Path::new("c.csv"),
            text,
            Some(&crate::sla::Policy::default()),
        )
        .unwrap_err();
        assert!(e.message.contains("add [[sla.tiers]]"), "{e}");
        // The export keeps the column, and reads back the same.
        let exported = customers_csv(&Registry::new(c.clone(), Vec::new()));
        assert_eq!(
            exported,
            "customer,contract_status,campuses,sla\nA,active,,gold\nB,active,,\n"
        );
        assert_eq!(
            parse_customers_for(Path::new("c.csv"), &exported, Some(&policy)).unwrap(),
            c
        );
    }

    #[test]
    fn bad_status_names_line() {
        let e = parse_customers(
            Path::new("c.csv"),
            "customer,contract_status\nA,active\nB,paid\n",
        )
        .unwrap_err();
        assert_eq!(e.line, 3);
        assert!(
            e.to_string()
                .starts_with("c.csv: line 3: contract_status \"paid\""),
            "{e}"
        );
    }

    #[test]
    fn persons_validation() {
        let head = "email,name,customer,campus,role,language\n";
        let ok = format!("{head}An.Peeters@Terbeke.example,An,wzc ter beke,,general,nl\n");
        let p = parse_persons(Path::new("p.csv"), &ok, known).unwrap();
        assert_eq!(p[0].email, "an.peeters@terbeke.example");
        assert_eq!(p[0].customer, "WZC Ter Beke");
        for (row, want) in [
            ("not-an-address,X,WZC Ter Beke,,general,nl", "not an e-mail"),
            ("a@b.example,X,WZC Ter Beke,,boss,nl", "role \"boss\""),
            ("a@b.example,X,WZC Ter Beke,,campus,nl", "needs the campus"),
            (
                "a@b.example,X,WZC Ter Beke,Gent,general,nl",
                "must be empty",
            ),
            ("a@b.example,X,WZC Ter Beke,,general,es", "language \"es\""),
            ("a@b.example,X,Nobody,,general,nl", "unknown"),
            (
                "a@b.example,X,WZC Ter Beke",
                "fields where the header has 6",
            ),
        ] {
            let e =
                parse_persons(Path::new("p.csv"), &format!("{head}{row}\n"), known).unwrap_err();
            assert_eq!(e.line, 2, "{row}");
            assert!(e.message.contains(want), "{row}: {e}");
        }
    }

    #[test]
    fn coverage_gaps_found() {
        let customers = vec![Customer {
            name: "A".into(),
            status: ContractStatus::Active,
            campuses: vec!["Gent".into(), "Aalst".into()],
            sla: None,
        }];
        let persons = vec![
            Person {
                email: "g@a.example".into(),
                name: "G".into(),
                customer: "A".into(),
                campus: None,
                role: Role::General,
                language: Language::Nl,
            },
            Person {
                email: "c@a.example".into(),
                name: "C".into(),
                customer: "A".into(),
                campus: Some("gent".into()),
                role: Role::Campus,
                language: Language::Nl,
            },
        ];
        let gaps = Registry::new(customers, persons).coverage_gaps();
        assert_eq!(
            gaps,
            vec![
                "A: no technical contact",
                "A: campus Aalst has no reference person"
            ]
        );
    }
}
