//! Training and measuring the sorting: the labelled corpus format, fitting
//! the model (`servicedesk train`), and the evaluation report
//! (`servicedesk eval`) with per-category precision/recall, the confusion
//! matrix, chargeable detection per reason, and language accuracy; and
//! [`Sorting`], the rules and model the daemon, `eval` and the tests load.
//!
//! Files are read here; everything that decides is in `triage`.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use crate::domain::{Category, ChargeReason, Language, Priority};
use crate::mail;
use crate::store::CorrectedTicket;
use crate::triage::classify::{rule_shares, Sorted};
use crate::triage::model::{self, Example, Model};
use crate::triage::text::Reading;
use crate::triage::{language, Rules};

/// One labelled mail.
#[derive(Debug, Clone, PartialEq)]
pub struct Labelled {
    pub path: PathBuf,
    pub category: Category,
    pub reason: Option<ChargeReason>,
    pub language: Language,
    /// `None` where the labels file has no `priority` column.
    pub priority: Option<Priority>,
    /// The mail itself when it is built into the binary (see
    /// [`builtin_corpus`]); otherwise it is read from `path`.
    pub raw: Option<&'static [u8]>,
}

/// The number at the end of a file's name: `nl-0005.eml` → 5.
fn file_number(path: &Path) -> Option<u64> {
    let stem = path.file_stem()?.to_string_lossy();
    let start = stem.len() - stem.chars().rev().take_while(char::is_ascii_digit).count();
    stem[start..].parse().ok()
}

/// True for the held-out part: files whose number is a multiple of five
/// (`nl-0005.eml`, `fr-0010.eml`, …). They are never trained or tuned on.
pub fn is_holdout(path: &Path) -> bool {
    file_number(path).is_some_and(|n| n % 5 == 0)
}

/// True for the validation part used while tuning: files whose number is
/// one more than a multiple of five. Never the held-out part.
pub fn is_validation(path: &Path) -> bool {
    file_number(path).is_some_and(|n| n % 5 == 1)
}

/// Reads a labels CSV (`file,category,chargeable_reason,language`, and
/// optionally `priority`); files are relative to `dir`.
///
/// # Errors
///
/// The first bad line, with its number and the fix.
pub fn load_labels(dir: &Path, labels: &Path) -> anyhow::Result<Vec<Labelled>> {
    let text = std::fs::read_to_string(labels)
        .map_err(|e| anyhow::anyhow!("{}: cannot read ({e})", labels.display()))?;
    parse_labels(dir, labels, &text)
}

/// [`load_labels`] of a text already read; `labels` names it in errors.
fn parse_labels(dir: &Path, labels: &Path, text: &str) -> anyhow::Result<Vec<Labelled>> {
    let mut rdr = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let headers = rdr.headers()?.clone();
    let col = |name: &str| headers.iter().position(|h| h.eq_ignore_ascii_case(name));
    let (Some(f), Some(c), Some(r), Some(l)) = (
        col("file"),
        col("category"),
        col("chargeable_reason"),
        col("language"),
    ) else {
        anyhow::bail!(
            "{}: line 1: the header must be file,category,chargeable_reason,language",
            labels.display()
        );
    };
    let p = col("priority");
    let mut out = Vec::new();
    for rec in rdr.records() {
        let rec = rec?;
        let line = rec.position().map(|p| p.line()).unwrap_or(0);
        let bad = |what: &str| anyhow::anyhow!("{}: line {line}: {what}", labels.display());
        let category = Category::parse(&rec[c])
            .ok_or_else(|| bad("category must be question, incident, change or feedback"))?;
        let reason = match rec[r].trim() {
            "" => None,
            x => Some(ChargeReason::parse(x).ok_or_else(|| {
                bad("chargeable_reason must be empty or infrastructure, training, own_modification, on_site, change_request")
            })?),
        };
        let language =
            Language::parse(&rec[l]).ok_or_else(|| bad("language must be nl, fr, en or de"))?;
        let priority = match p.map(|p| rec.get(p).unwrap_or("").trim()) {
            None | Some("") => None,
            Some(x) => Some(
                Priority::parse(x)
                    .ok_or_else(|| bad("priority must be empty or normal, high, critical"))?,
            ),
        };
        out.push(Labelled {
            path: dir.join(&rec[f]),
            category,
            reason,
            language,
            priority,
            raw: None,
        });
    }
    Ok(out)
}

mod embedded {
    // `CORPORA`: (name, labels CSV, [(file, bytes)]) of each labelled
    // corpus under `tests/`, written by build.rs.
    include!(concat!(env!("OUT_DIR"), "/corpora.rs"));
}

/// The labelled corpora built into the binary (`tests/corpus` and the
/// blind ones), in `part`: what a desk's own model is trained and judged
/// on besides its agents' corrections, with no files to install. Paths read
/// `corpus/nl/nl-0001.eml`.
pub fn builtin_corpus(part: Part) -> Vec<Labelled> {
    let mut out = Vec::new();
    for (name, labels, files) in embedded::CORPORA {
        let set = parse_labels(Path::new(name), Path::new(name), labels)
            .expect("the built-in labels are valid (checked by a test)");
        for mut l in set {
            let rel = l.path.strip_prefix(name).unwrap_or(&l.path);
            l.raw = files
                .binary_search_by(|(f, _)| Path::new(f).cmp(rel))
                .ok()
                .map(|i| files[i].1);
            out.push(l);
        }
    }
    out.retain(|l| part.holds(&l.path));
    out
}

/// The reading of one labelled mail, as triage sees it.
fn read_mail(l: &Labelled) -> anyhow::Result<(Reading, mail::InboundMail)> {
    let path = &l.path;
    let raw = match l.raw {
        Some(bytes) => std::borrow::Cow::Borrowed(bytes),
        None => std::fs::read(path)
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?
            .into(),
    };
    let m = mail::parse(&raw).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    Ok((Reading::of(&m.subject, &m.text), m))
}

/// The training example of one reading.
pub fn example(
    rules: &Rules,
    reading: &Reading,
    category: Category,
    reason: Option<ChargeReason>,
    priority: Option<Priority>,
    weight: f32,
) -> Example {
    let by_rules = rules.classify(reading, true);
    Example {
        features: model::features(reading, &by_rules.evidence.rules),
        rule_shares: rule_shares(&by_rules.evidence),
        category,
        reason,
        priority,
        weight,
    }
}

/// Examples from labelled files.
///
/// # Errors
///
/// When a file cannot be read or parsed.
pub fn examples(rules: &Rules, set: &[Labelled]) -> anyhow::Result<Vec<Example>> {
    set.iter()
        .map(|l| {
            let (reading, _) = read_mail(l)?;
            Ok(example(
                rules, &reading, l.category, l.reason, l.priority, 1.0,
            ))
        })
        .collect()
}

/// How much more an agent's correction counts than a corpus mail.
pub const CORRECTION_WEIGHT: f32 = 3.0;

/// Examples from tickets an agent corrected.
///
/// The examples come in a fixed order, whatever order the database returned
/// the tickets in: training visits examples in a seeded order, so the same
/// corpus and corrections give the same model bytes.
pub fn correction_examples(rules: &Rules, corrected: &[CorrectedTicket]) -> Vec<Example> {
    let mut sorted: Vec<&CorrectedTicket> = corrected.iter().collect();
    sorted.sort_by(|a, b| {
        (&a.subject, &a.body, a.category, a.chargeable_reason).cmp(&(
            &b.subject,
            &b.body,
            b.category,
            b.chargeable_reason,
        ))
    });
    sorted
        .into_iter()
        .map(|c| {
            let reading = Reading::of(&c.subject, &c.body);
            example(
                rules,
                &reading,
                c.category,
                c.chargeable_reason,
                c.priority,
                CORRECTION_WEIGHT,
            )
        })
        .collect()
}

/// The rules and the model that sort mail: what the daemon sorts with.
/// The daemon loads it from its `[triage]` section; `eval` and the tests
/// load the built-in pair, which is what a desk sorts with until it names
/// files of its own.
#[derive(Debug)]
pub struct Sorting {
    pub rules: Rules,
    /// `None` only for a binary built without a model.
    pub model: Option<Model>,
}

impl Sorting {
    /// The rules from `rules_file` (or the built-in `config/rules.toml`)
    /// and the model from `model_file` (or the built-in `config/model.bin`).
    ///
    /// # Errors
    ///
    /// When a file cannot be read or is not valid rules or a model.
    pub fn load(rules_file: Option<&Path>, model_file: Option<&Path>) -> anyhow::Result<Sorting> {
        let rules = match rules_file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    anyhow::anyhow!("{}: cannot read the rules file ({e})", path.display())
                })?;
                Rules::parse(&path.display().to_string(), &text)?
            }
            None => Rules::builtin(),
        };
        let model = model::load(model_file)?;
        Ok(Sorting { rules, model })
    }

    /// The built-in rules and model, as a configuration without
    /// `rules_file` and `model_file` sorts.
    ///
    /// # Errors
    ///
    /// When the built-in model is not readable (a broken build).
    pub fn builtin() -> anyhow::Result<Sorting> {
        Sorting::load(None, None)
    }
}

/// Fits a model.
pub fn train(examples: &[Example]) -> Model {
    Model::train(examples, model::EPOCHS)
}

/// Which part of a labelled corpus a command works on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// Everything but the held-out files: what `train` learns from.
    Training,
    /// The training part without the validation files (tuning).
    TrainingWithoutValidation,
    /// Every file, the held-out ones included.
    All,
    /// Only the held-out files.
    Holdout,
    /// Only the validation files.
    Validation,
}

/// The labelled mails of `labels` (files relative to `dir`) in `part`.
///
/// # Errors
///
/// As [`load_labels`].
pub fn corpus(dir: &Path, labels: &Path, part: Part) -> anyhow::Result<Vec<Labelled>> {
    let mut set = load_labels(dir, labels)?;
    set.retain(|l| part.holds(&l.path));
    Ok(set)
}

impl Part {
    /// Whether the file at `path` belongs to this part.
    pub fn holds(self, path: &Path) -> bool {
        match self {
            Part::Training => !is_holdout(path),
            Part::TrainingWithoutValidation => !is_holdout(path) && !is_validation(path),
            Part::All => true,
            Part::Holdout => is_holdout(path),
            Part::Validation => is_validation(path),
        }
    }
}

/// Fits the model `train` writes: on `corpus` and on the tickets agents
/// corrected, with the built-in rules' features.
///
/// # Errors
///
/// When a corpus file cannot be read or parsed.
pub fn fit(corpus: &[Labelled], corrected: &[CorrectedTicket]) -> anyhow::Result<Model> {
    let rules = Rules::builtin();
    let mut examples = examples(&rules, corpus)?;
    examples.extend(correction_examples(&rules, corrected));
    let temperature = cross_fitted_temperature(&rules, &examples);
    Ok(train(&examples).calibrated(temperature))
}

/// How many parts [`cross_fitted_temperature`] splits the examples into.
const FOLDS: usize = 5;

/// The temperature that makes the category confidence honest, fitted on
/// predictions for mail the model was not trained on: the examples are
/// split into [`FOLDS`] parts, a model is trained on all but one part and
/// sorts that part, and the temperature that gives those sortings the
/// highest likelihood wins. The final model, trained on everything, is a
/// little surer than each of these, so the figure errs on the modest side.
pub fn cross_fitted_temperature(rules: &Rules, examples: &[Example]) -> f32 {
    if examples.len() < FOLDS * 4 {
        return 1.0;
    }
    let mut scored: Vec<(Vec<f32>, usize)> = Vec::with_capacity(examples.len());
    for fold in 0..FOLDS {
        let rest: Vec<Example> = examples
            .iter()
            .enumerate()
            .filter(|(i, _)| i % FOLDS != fold)
            .map(|(_, e)| e.clone())
            .collect();
        let m = train(&rest);
        for e in examples.iter().skip(fold).step_by(FOLDS) {
            let logits = rules.category_logits(&m.predict(&e.features), &e.rule_shares);
            let truth = Category::ALL
                .iter()
                .position(|c| *c == e.category)
                .unwrap_or(0);
            scored.push((logits, truth));
        }
    }
    fit_temperature(&scored)
}

/// The temperature in [0.05, 5] that minimises the negative
/// log-likelihood of the true classes (golden-section search on its
/// logarithm: the likelihood is unimodal in it).
pub fn fit_temperature(scored: &[(Vec<f32>, usize)]) -> f32 {
    let nll = |t: f64| -> f64 {
        scored
            .iter()
            .map(|(logits, truth)| {
                let z: Vec<f64> = logits.iter().map(|l| f64::from(*l) / t).collect();
                let max = z.iter().copied().fold(f64::MIN, f64::max);
                let sum: f64 = z.iter().map(|v| (v - max).exp()).sum();
                max + sum.ln() - z[*truth]
            })
            .sum()
    };
    let (mut lo, mut hi) = (0.05f64.ln(), 5f64.ln());
    let g = (5f64.sqrt() - 1.0) / 2.0;
    for _ in 0..60 {
        let a = hi - g * (hi - lo);
        let b = lo + g * (hi - lo);
        if nll(a.exp()) < nll(b.exp()) {
            hi = b;
        } else {
            lo = a;
        }
    }
    ((lo + hi) / 2.0).exp() as f32
}

/// Fits a desk's own model: the built-in corpora's training parts and the
/// tickets its agents corrected, with the built-in rules' features.
///
/// # Errors
///
/// When a built-in mail cannot be parsed (a broken build).
pub fn retrain(corrected: &[CorrectedTicket]) -> anyhow::Result<Model> {
    fit(&builtin_corpus(Part::Training), corrected)
}

/// A model's figures on the held-out parts of the built-in corpora: what
/// decides whether a new model may replace the one in use.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct HeldOut {
    pub mails: u32,
    /// Mails sorted into the wrong category.
    #[serde(default)]
    pub category_wrong: u32,
    /// Mails flagged chargeable wrongly, or not flagged when they are.
    #[serde(default)]
    pub chargeable_wrong: u32,
    /// Critical mails not sorted critical.
    #[serde(default)]
    pub critical_missed: u32,
    pub category_accuracy: f64,
    pub chargeable_precision: f64,
    pub chargeable_recall: f64,
    pub critical_recall: f64,
}

impl HeldOut {
    /// No worse than `other` in categories, chargeable flags and critical
    /// tickets found, give or take `slack` mails each: retraining on a few
    /// more examples moves a mail or two either way by chance alone, and a
    /// gate that cannot tell that from harm would keep every correction out.
    pub fn no_worse_than(&self, other: &HeldOut, slack: u32) -> bool {
        self.category_wrong <= other.category_wrong + slack
            && self.chargeable_wrong <= other.chargeable_wrong + slack
            && self.critical_missed <= other.critical_missed + slack
    }
}

impl fmt::Display for HeldOut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "category {:.1}%, chargeable P/R {:.1}/{:.1}%, critical recall {:.1}% on {} held-out mails",
            self.category_accuracy * 100.0,
            self.chargeable_precision * 100.0,
            self.chargeable_recall * 100.0,
            self.critical_recall * 100.0,
            self.mails
        )
    }
}

/// Sorts the held-out parts of the built-in corpora with the built-in
/// rules and `model`.
///
/// # Errors
///
/// When a built-in mail cannot be parsed (a broken build).
pub fn judge(model: &Model) -> anyhow::Result<HeldOut> {
    let r = evaluate(
        &Rules::builtin(),
        Some(model),
        &builtin_corpus(Part::Holdout),
    )?;
    Ok(HeldOut {
        mails: r.mails,
        category_wrong: r.mails - r.category_correct,
        chargeable_wrong: r.chargeable.fp + r.chargeable.fn_,
        critical_missed: r.priority[2][0] + r.priority[2][1],
        category_accuracy: r.category_accuracy(),
        chargeable_precision: r.chargeable_precision(),
        chargeable_recall: r.chargeable_recall(),
        critical_recall: r.critical_recall(),
    })
}

/// Counts for one class.
#[derive(Debug, Clone, Copy, Default)]
struct Counts {
    tp: u32,
    fp: u32,
    fn_: u32,
}

impl Counts {
    fn precision(&self) -> f64 {
        ratio(self.tp, self.tp + self.fp)
    }
    fn recall(&self) -> f64 {
        ratio(self.tp, self.tp + self.fn_)
    }
}

fn ratio(a: u32, b: u32) -> f64 {
    if b == 0 {
        1.0
    } else {
        f64::from(a) / f64::from(b)
    }
}

/// The evaluation of a set of labelled mails.
#[derive(Debug, Default)]
pub struct Report {
    pub mails: u32,
    pub category_correct: u32,
    /// confusion[truth][predicted], in [`Category::ALL`] order.
    confusion: [[u32; 4]; 4],
    chargeable: Counts,
    /// Among mails correctly flagged chargeable: how many got the right reason.
    right_reason: u32,
    per_reason: BTreeMap<&'static str, Counts>,
    pub language_correct: u32,
    /// Per confidence band (see [`BANDS`]): mails sorted with a category
    /// confidence in it, how many of those were right, and the sum of
    /// their confidences.
    reliability: [(u32, u32, f64); BANDS.len()],
    /// priority[truth][predicted] in [`Priority::ALL`] order, for mails
    /// whose label gives a priority.
    priority: [[u32; 3]; 3],
    /// Files that were wrong, for looking at.
    pub mistakes: Vec<String>,
}

/// The lower bounds of the confidence bands of the reliability table.
const BANDS: [f32; 9] = [0.0, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95];

/// From this category confidence on, a ticket is not flagged for checking.
const CONFIDENT: f32 = crate::triage::UNSURE_BELOW;

impl Report {
    pub fn category_accuracy(&self) -> f64 {
        ratio(self.category_correct, self.mails)
    }

    pub fn category_recall(&self, c: usize) -> f64 {
        let row: u32 = self.confusion[c].iter().sum();
        ratio(self.confusion[c][c], row)
    }

    fn category_precision(&self, c: usize) -> f64 {
        let col: u32 = (0..4).map(|t| self.confusion[t][c]).sum();
        ratio(self.confusion[c][c], col)
    }

    pub fn chargeable_precision(&self) -> f64 {
        self.chargeable.precision()
    }

    pub fn chargeable_recall(&self) -> f64 {
        self.chargeable.recall()
    }

    pub fn right_reason_share(&self) -> f64 {
        ratio(self.right_reason, self.chargeable.tp)
    }

    pub fn language_accuracy(&self) -> f64 {
        ratio(self.language_correct, self.mails)
    }

    /// Mails sorted with confidence of at least [`CONFIDENT`], and how many
    /// of those were right.
    fn confident(&self) -> (u32, u32) {
        self.reliability
            .iter()
            .zip(BANDS)
            .filter(|(_, low)| *low >= CONFIDENT)
            .fold((0, 0), |(n, r), ((bn, br, _), _)| (n + bn, r + br))
    }

    /// The expected calibration error: the gap between the confidence and
    /// the share right, averaged over the bands, weighted by their mails.
    pub fn calibration_error(&self) -> f64 {
        let gaps: f64 = self
            .reliability
            .iter()
            .filter(|(n, _, _)| *n > 0)
            .map(|(_, right, sum)| (sum - f64::from(*right)).abs())
            .sum();
        gaps / f64::from(self.mails.max(1))
    }

    /// Share of the critical mails sorted critical.
    pub fn critical_recall(&self) -> f64 {
        let row: u32 = self.priority[2].iter().sum();
        ratio(self.priority[2][2], row)
    }

    /// Share of the mails sorted critical that are.
    pub fn critical_precision(&self) -> f64 {
        let col: u32 = (0..3).map(|t| self.priority[t][2]).sum();
        ratio(self.priority[2][2], col)
    }

    /// Share of the mails with a labelled priority that got it.
    pub fn priority_accuracy(&self) -> f64 {
        let all: u32 = self.priority.iter().flatten().sum();
        ratio((0..3).map(|i| self.priority[i][i]).sum(), all)
    }

    fn add(&mut self, truth: &Labelled, sorted: &Sorted, lang: Language) {
        let (category, confidence, reason) = (
            sorted.category,
            sorted.evidence.confidence,
            sorted.chargeable,
        );
        let idx = |c: Category| Category::ALL.iter().position(|x| *x == c).unwrap_or(0);
        self.mails += 1;
        let band = BANDS
            .iter()
            .rposition(|low| confidence >= *low)
            .unwrap_or(0);
        self.reliability[band].0 += 1;
        self.reliability[band].1 += u32::from(truth.category == category);
        self.reliability[band].2 += f64::from(confidence);
        self.confusion[idx(truth.category)][idx(category)] += 1;
        let mut wrong = Vec::new();
        if truth.category == category {
            self.category_correct += 1;
        } else {
            wrong.push(format!(
                "category {} (is {})",
                category.as_str(),
                truth.category.as_str()
            ));
        }
        match (truth.reason, reason) {
            (Some(t), Some(p)) => {
                self.chargeable.tp += 1;
                if t == p {
                    self.right_reason += 1;
                } else {
                    wrong.push(format!("reason {} (is {})", p.as_str(), t.as_str()));
                }
            }
            (Some(t), None) => {
                self.chargeable.fn_ += 1;
                wrong.push(format!("not flagged (is {})", t.as_str()));
            }
            (None, Some(p)) => {
                self.chargeable.fp += 1;
                wrong.push(format!("flagged {} (is in scope)", p.as_str()));
            }
            (None, None) => {}
        }
        for r in ChargeReason::ALL {
            let e = self.per_reason.entry(r.as_str()).or_default();
            match (truth.reason == Some(r), reason == Some(r)) {
                (true, true) => e.tp += 1,
                (false, true) => e.fp += 1,
                (true, false) => e.fn_ += 1,
                (false, false) => {}
            }
        }
        if truth.language == lang {
            self.language_correct += 1;
        } else {
            wrong.push(format!("language {lang} (is {})", truth.language));
        }
        if let Some(p) = truth.priority {
            let pi = |p: Priority| Priority::ALL.iter().position(|x| *x == p).unwrap_or(0);
            self.priority[pi(p)][pi(sorted.priority)] += 1;
            if p != sorted.priority {
                wrong.push(format!("priority {} (is {p})", sorted.priority.as_str()));
            }
        }
        if !wrong.is_empty() {
            self.mistakes
                .push(format!("{}: {}", truth.path.display(), wrong.join(", ")));
        }
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pct = |x: f64| format!("{:5.1}%", x * 100.0);
        writeln!(f, "mails: {}", self.mails)?;
        writeln!(f, "category accuracy: {}", pct(self.category_accuracy()))?;
        writeln!(
            f,
            "  {:<10} {:>9} {:>9} {:>7}",
            "category", "precision", "recall", "mails"
        )?;
        for (i, c) in Category::ALL.iter().enumerate() {
            writeln!(
                f,
                "  {:<10} {:>9} {:>9} {:>7}",
                c.as_str(),
                pct(self.category_precision(i)),
                pct(self.category_recall(i)),
                self.confusion[i].iter().sum::<u32>()
            )?;
        }
        writeln!(f, "confusion (rows: truth, columns: predicted):")?;
        write!(f, "  {:<10}", "")?;
        for c in Category::ALL {
            write!(f, " {:>9}", c.as_str())?;
        }
        writeln!(f)?;
        for (i, c) in Category::ALL.iter().enumerate() {
            write!(f, "  {:<10}", c.as_str())?;
            for j in 0..4 {
                write!(f, " {:>9}", self.confusion[i][j])?;
            }
            writeln!(f)?;
        }
        writeln!(
            f,
            "chargeable: precision {}, recall {}, right reason on {} of the correctly flagged",
            pct(self.chargeable_precision()),
            pct(self.chargeable_recall()),
            pct(self.right_reason_share())
        )?;
        writeln!(
            f,
            "  {:<17} {:>9} {:>9} {:>7}",
            "reason", "precision", "recall", "mails"
        )?;
        for (r, c) in &self.per_reason {
            writeln!(
                f,
                "  {:<17} {:>9} {:>9} {:>7}",
                r,
                pct(c.precision()),
                pct(c.recall()),
                c.tp + c.fn_
            )?;
        }
        writeln!(f, "language accuracy: {}", pct(self.language_accuracy()))?;
        let labelled: u32 = self.priority.iter().flatten().sum();
        if labelled > 0 {
            writeln!(
                f,
                "priority ({labelled} labelled): right {}, critical precision {}, recall {}",
                pct(self.priority_accuracy()),
                pct(self.critical_precision()),
                pct(self.critical_recall())
            )?;
            write!(f, "  {:<10}", "")?;
            for p in Priority::ALL {
                write!(f, " {:>9}", p.as_str())?;
            }
            writeln!(f)?;
            for (i, p) in Priority::ALL.iter().enumerate() {
                write!(f, "  {:<10}", p.as_str())?;
                for j in 0..3 {
                    write!(f, " {:>9}", self.priority[i][j])?;
                }
                writeln!(f)?;
            }
        }
        writeln!(
            f,
            "reliability (category confidence: mails, mean confidence, share right):"
        )?;
        for (i, low) in BANDS.iter().enumerate() {
            let high = BANDS.get(i + 1).copied().unwrap_or(1.0);
            let (n, right, sum) = self.reliability[i];
            if n == 0 {
                writeln!(f, "  {low:.2}-{high:.2} {n:>7}       -       -")?;
            } else {
                writeln!(
                    f,
                    "  {low:.2}-{high:.2} {n:>7} {} {}",
                    pct(sum / f64::from(n)),
                    pct(ratio(right, n))
                )?;
            }
        }
        writeln!(
            f,
            "calibration error (confidence vs share right, weighted): {:.1} points",
            self.calibration_error() * 100.0
        )?;
        let (n, right) = self.confident();
        writeln!(
            f,
            "confident (>= {CONFIDENT:.1}): {} of the mails, {} right; the rest is flagged for an agent",
            pct(ratio(n, self.mails)),
            pct(ratio(right, n))
        )
    }
}

/// Sorts every labelled mail with `rules` and `model` and compares.
///
/// # Errors
///
/// When a file cannot be read or parsed.
pub fn evaluate(rules: &Rules, model: Option<&Model>, set: &[Labelled]) -> anyhow::Result<Report> {
    let mut report = Report::default();
    for l in set {
        let (reading, _) = read_mail(l)?;
        let sorted = rules.sort(&reading, model, true, false);
        let lang = language::detect_best(&reading.for_language());
        report.add(l, &sorted, lang);
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn corrected(
        subject: &str,
        category: Category,
        reason: Option<ChargeReason>,
    ) -> CorrectedTicket {
        CorrectedTicket {
            category,
            chargeable_reason: reason,
            priority: None,
            subject: subject.into(),
            body: format!("{subject}, sinds vanochtend."),
        }
    }

    #[test]
    fn corrections_give_the_same_examples_in_any_order() {
        let rules = Rules::builtin();
        let tickets = vec![
            corrected(
                "Printer op de gang doet niets",
                Category::Incident,
                Some(ChargeReason::Infrastructure),
            ),
            corrected(
                "Rapport per afdeling",
                Category::Change,
                Some(ChargeReason::ChangeRequest),
            ),
            corrected("Dank voor de snelle hulp", Category::Feedback, None),
        ];
        let forward = correction_examples(&rules, &tickets);
        let reversed: Vec<CorrectedTicket> = tickets.iter().rev().cloned().collect();
        let backward = correction_examples(&rules, &reversed);
        assert_eq!(forward.len(), 3);
        let key = |e: &Example| (e.category, e.reason, e.features.clone());
        assert_eq!(
            forward.iter().map(key).collect::<Vec<_>>(),
            backward.iter().map(key).collect::<Vec<_>>()
        );
        assert_eq!(
            train(&forward).to_bytes(),
            train(&backward).to_bytes(),
            "the same corrections in another order train the same model"
        );
    }

    #[test]
    fn the_built_in_corpora_are_whole() {
        let all = builtin_corpus(Part::All);
        assert!(all.len() >= 1580, "{}", all.len());
        assert!(
            all.iter().all(|l| l.raw.is_some()),
            "a labelled file is missing"
        );
        assert!(all.iter().all(|l| l.priority.is_some()));
        let held = builtin_corpus(Part::Holdout);
        assert!(held.iter().all(|l| is_holdout(&l.path)));
        assert_eq!(held.len() + builtin_corpus(Part::Training).len(), all.len());
        let (reading, _) = read_mail(&all[0]).unwrap();
        assert!(!reading.body.is_empty());
    }

    #[test]
    fn the_fitted_temperature_is_the_one_that_made_the_confidence() {
        // Sortings whose confidence is too sure by a factor of 2 in the
        // logits: right exactly as often as softmax(logits / 2) says.
        let mut scored = Vec::new();
        let mut rng = 7u64;
        for _ in 0..4000 {
            rng = rng
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let margin = 1.0 + (rng >> 40) as f32 / (1u64 << 24) as f32 * 5.0;
            let logits = vec![margin, 0.0, 0.0, 0.0];
            let p_right = 1.0 / (1.0 + 3.0 * (-margin / 2.0).exp());
            rng = rng
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let u = (rng >> 40) as f32 / (1u64 << 24) as f32;
            scored.push((
                logits,
                if u < p_right {
                    0
                } else {
                    1 + (rng % 3) as usize
                },
            ));
        }
        let t = fit_temperature(&scored);
        assert!((1.7..2.3).contains(&t), "{t}");
    }

    #[test]
    fn holdout_is_every_fifth_file() {
        assert!(is_holdout(Path::new("nl/nl-0005.eml")));
        assert!(is_holdout(Path::new("fr/fr-0300.eml")));
        assert!(!is_holdout(Path::new("nl/nl-0001.eml")));
        assert!(!is_holdout(Path::new("README.md")));
    }
}
