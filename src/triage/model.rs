//! The trained part of the sorting: a multinomial logistic regression over
//! hashed features of the mail as an agent reads it — words and word pairs of
//! the new text, subject words, character 4-grams (which catch Dutch and
//! German compounds: "communicatiestoring", "Netzwerkausfall"), and the
//! multilingual concept rules of `config/rules.toml` that fired.
//!
//! Three heads share the features: one for the category, one for the
//! chargeable reason (or none), one for the priority. A temperature, fitted
//! on mail the model was not trained on, makes the category's confidence
//! mean what it says. `servicedesk train` fits them on the labelled
//! corpus plus agents' corrections and writes a small binary model file;
//! loading it is a single read. No I/O here beyond bytes in, bytes out.

use std::fmt::Write as _;

use super::text::Reading;
use super::{Category, ChargeReason, Priority};

/// Number of hash buckets is `1 << BITS`.
const BITS: u32 = 17;
const DIMS: usize = 1 << BITS;
// Every model file starts with the magic of its format: a daemon never
// misreads a file written by another version, and a new format can come
// while the older files keep loading.
/// Weights as (index, f32) pairs; still read.
const MAGIC_V1: &[u8; 8] = b"SDMODEL1";
/// Weights as (index delta as a varint, bfloat16): under half the size.
const MAGIC_V2: &[u8; 8] = b"SDMODEL2";
/// As version 2, plus the temperature and the priority head.
const MAGIC: &[u8; 8] = b"SDMODEL3";
/// SGD step size at the first epoch; it decays per epoch.
const LEARNING_RATE: f32 = 0.5;
/// L2 regularisation of the weights an example touches.
const L2: f32 = 1e-5;
/// Passes over the training data.
pub const EPOCHS: usize = 25;

/// The reason head's classes: index 0 is "in scope".
pub const REASONS: [Option<ChargeReason>; 6] = [
    None,
    Some(ChargeReason::Infrastructure),
    Some(ChargeReason::Training),
    Some(ChargeReason::OwnModification),
    Some(ChargeReason::OnSite),
    Some(ChargeReason::ChangeRequest),
];

/// A sparse feature vector: (bucket, value), L2-normalised.
pub type Features = Vec<(u32, f32)>;

/// Why a model file cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("model file: {0}")]
pub struct ModelError(pub String);

/// One linear softmax classifier over the hashed features.
#[derive(Debug, Clone, PartialEq)]
struct Head {
    classes: usize,
    /// Per bucket, the weight of each class side by side (a feature's
    /// weights share a cache line), then `classes` biases. Files keep the
    /// weights class by class (see [`Head::file_index`]).
    weights: Vec<f32>,
}

/// The trained model: a category head, a reason head and (from format 3)
/// a priority head.
#[derive(Debug, Clone, PartialEq)]
pub struct Model {
    category: Head,
    reason: Head,
    priority: Option<Head>,
    /// The category's scores are divided by this before they become
    /// probabilities (1 for a model that was never calibrated).
    pub temperature: f32,
    /// How many examples it was trained on (shown by `tickets show`).
    pub trained_on: u32,
}

impl Model {
    /// What `servicedesk doctor` says of a model: its format and what it
    /// was trained on.
    pub fn describe(&self) -> String {
        format!(
            "format {}, trained on {} example(s), temperature {:.2}{}",
            String::from_utf8_lossy(MAGIC),
            self.trained_on,
            self.temperature,
            if self.priority.is_some() {
                ""
            } else {
                ", no priority head"
            }
        )
    }
}

/// A prediction with its probabilities.
#[derive(Debug, Clone, PartialEq)]
pub struct Prediction {
    /// Probability per category, in [`Category::ALL`] order.
    pub category: [f32; 4],
    /// Probability per reason, in [`REASONS`] order.
    pub reason: [f32; 6],
    /// Probability per priority, in [`Priority::ALL`] order, when the
    /// model has a priority head.
    pub priority: Option<[f32; 3]>,
}

fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// Words of a folded text (see [`super::text::fold`]): ASCII letters and
/// digits, two to forty characters.
fn words(folded: &str) -> impl Iterator<Item = &str> + '_ {
    folded
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| (2..=40).contains(&w.len()))
}

/// Calls `sink(name, value)` for every feature of a reading. `rule_hits` are
/// the concept rules that fired, with their scores. Character 4-grams are
/// left out when `grams` is false (they explain nothing to a person).
pub fn for_each_feature(
    reading: &Reading,
    rule_hits: &[(String, f32)],
    grams: bool,
    mut sink: impl FnMut(&str, f32),
) {
    let mut name = String::with_capacity(64);
    let mut prev: Option<&str> = None;
    let mut padded = Vec::with_capacity(48);
    for w in words(&reading.folded_body).take(600) {
        name.clear();
        let _ = write!(name, "w:{w}");
        sink(&name, 1.0);
        if let Some(p) = prev {
            name.clear();
            let _ = write!(name, "b:{p} {w}");
            sink(&name, 1.0);
        }
        if grams && w.len() > 3 {
            padded.clear();
            padded.push(b'_');
            padded.extend_from_slice(w.as_bytes());
            padded.push(b'_');
            for gram in padded.windows(4) {
                name.clear();
                name.push_str("c:");
                // ASCII: every window is a valid string.
                name.push_str(std::str::from_utf8(gram).unwrap_or(""));
                sink(&name, 0.5);
            }
        }
        prev = Some(w);
    }
    for w in words(&reading.folded_subject).take(40) {
        name.clear();
        let _ = write!(name, "s:{w}");
        sink(&name, 1.5);
    }
    for (id, score) in rule_hits {
        name.clear();
        let _ = write!(name, "r:{id}");
        // A rule voting against its target (negative weight) is a feature
        // as strong as one voting for it: the model learns which way it leans.
        sink(&name, 1.0 + score.abs().min(10.0) / 2.0);
    }
    if reading.has_quote {
        sink("x:quoted", 1.0);
    }
    if reading.body.contains('?') || reading.subject.contains('?') {
        sink("x:question_mark", 1.0);
    }
    let n = reading.body.split_whitespace().count();
    sink(
        match n {
            0..=15 => "x:len_short",
            16..=80 => "x:len_medium",
            _ => "x:len_long",
        },
        1.0,
    );
    sink("x:bias", 1.0);
}

/// The hashed, normalised feature vector of a reading.
pub fn features(reading: &Reading, rule_hits: &[(String, f32)]) -> Features {
    let mut out: Vec<(u32, f32)> = Vec::with_capacity(512);
    for_each_feature(reading, rule_hits, true, |name, v| {
        out.push(((fnv1a(name.as_bytes()) as usize % DIMS) as u32, v));
    });
    out.sort_unstable_by_key(|(i, _)| *i);
    // Repeated words add up, but sub-linearly.
    let mut merged: Vec<(u32, f32)> = Vec::with_capacity(out.len());
    for (i, v) in out {
        match merged.last_mut() {
            Some((j, w)) if *j == i => *w += v,
            _ => merged.push((i, v)),
        }
    }
    for (_, v) in merged.iter_mut() {
        *v = v.sqrt();
    }
    let norm = merged
        .iter()
        .map(|(_, v)| v * v)
        .sum::<f32>()
        .sqrt()
        .max(1e-6);
    for (_, v) in merged.iter_mut() {
        *v /= norm;
    }
    merged
}

fn softmax(scores: &mut [f32]) {
    let max = scores.iter().copied().fold(f32::MIN, f32::max);
    let mut sum = 0.0;
    for s in scores.iter_mut() {
        *s = (*s - max).exp();
        sum += *s;
    }
    for s in scores.iter_mut() {
        *s /= sum;
    }
}

impl Head {
    fn new(classes: usize) -> Head {
        Head {
            classes,
            weights: vec![0.0; classes * DIMS + classes],
        }
    }

    fn scores(&self, x: &Features) -> Vec<f32> {
        let k = self.classes;
        let mut s = self.weights[k * DIMS..].to_vec();
        for (i, v) in x {
            let at = *i as usize * k;
            for (sc, w) in s.iter_mut().zip(&self.weights[at..at + k]) {
                *sc += w * v;
            }
        }
        s
    }

    /// Where the weight at `mem` (an index into `weights`) sits in a
    /// model file: class by class, then the biases.
    fn file_index(&self, mem: usize) -> usize {
        let k = self.classes;
        if mem < k * DIMS {
            (mem % k) * DIMS + mem / k
        } else {
            mem
        }
    }

    /// The inverse of [`Head::file_index`].
    fn mem_index(&self, file: usize) -> usize {
        let k = self.classes;
        if file < k * DIMS {
            (file % DIMS) * k + file / DIMS
        } else {
            file
        }
    }

    fn probabilities(&self, x: &Features) -> Vec<f32> {
        let mut s = self.scores(x);
        softmax(&mut s);
        s
    }

    /// One SGD step of softmax regression with L2 applied to touched weights.
    fn step(&mut self, x: &Features, label: usize, rate: f32, l2: f32, class_weight: f32) {
        let p = self.probabilities(x);
        for (c, pc) in p.iter().enumerate() {
            let g = (pc - if c == label { 1.0 } else { 0.0 }) * class_weight;
            for (i, v) in x {
                let w = &mut self.weights[*i as usize * self.classes + c];
                *w -= rate * (g * v + l2 * *w);
            }
            self.weights[self.classes * DIMS + c] -= rate * g;
        }
    }

    fn contribution(&self, class: usize, bucket: u32, value: f32) -> f32 {
        self.weights[bucket as usize * self.classes + class] * value
    }
}

/// One labelled example for training.
#[derive(Debug, Clone)]
pub struct Example {
    pub features: Features,
    /// Each category's share of the rules' votes (see
    /// [`super::classify::rule_shares`]), for fitting the temperature.
    pub rule_shares: [f32; 4],
    pub category: Category,
    pub reason: Option<ChargeReason>,
    /// `None` where the label does not say.
    pub priority: Option<Priority>,
    /// Agents' corrections count more than corpus mail.
    pub weight: f32,
}

fn category_index(c: Category) -> usize {
    Category::ALL.iter().position(|x| *x == c).unwrap_or(0)
}

fn reason_index(r: Option<ChargeReason>) -> usize {
    REASONS.iter().position(|x| *x == r).unwrap_or(0)
}

fn priority_index(p: Priority) -> usize {
    Priority::ALL.iter().position(|x| *x == p).unwrap_or(0)
}

/// A small deterministic generator for shuffling (training must be repeatable).
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

impl Model {
    /// Fits the heads; the priority head on the examples whose priority
    /// is known, if any is. Classes are weighted inversely to their
    /// frequency, so rare reasons are not drowned by "in scope". The
    /// temperature is 1 until [`Model::calibrated`] sets it.
    pub fn train(examples: &[Example], epochs: usize) -> Model {
        let mut category = Head::new(4);
        let mut reason = Head::new(REASONS.len());
        let mut priority = Head::new(Priority::ALL.len());
        let mut cat_count = [0f32; 4];
        let mut reason_count = [0f32; 6];
        let mut priority_count = [0f32; 3];
        for e in examples {
            cat_count[category_index(e.category)] += 1.0;
            reason_count[reason_index(e.reason)] += 1.0;
            if let Some(p) = e.priority.filter(|_| e.category == Category::Incident) {
                priority_count[priority_index(p)] += 1.0;
            }
        }
        let balance = |counts: &[f32]| -> Vec<f32> {
            let total: f32 = counts.iter().sum();
            let k = counts.iter().filter(|c| **c > 0.0).count().max(1) as f32;
            counts
                .iter()
                .map(|c| {
                    if *c > 0.0 {
                        (total / (k * c)).sqrt()
                    } else {
                        1.0
                    }
                })
                .collect()
        };
        let (cat_w, reason_w) = (balance(&cat_count), balance(&reason_count));
        let priority_w = balance(&priority_count);
        let mut order: Vec<usize> = (0..examples.len()).collect();
        let mut rng = SplitMix(0x5eed);
        for epoch in 0..epochs {
            for i in (1..order.len()).rev() {
                let j = (rng.next() % (i as u64 + 1)) as usize;
                order.swap(i, j);
            }
            let rate = LEARNING_RATE / (1.0 + epoch as f32 * 0.2);
            for &i in &order {
                let e = &examples[i];
                let (c, r) = (category_index(e.category), reason_index(e.reason));
                category.step(&e.features, c, rate, L2, cat_w[c] * e.weight);
                reason.step(&e.features, r, rate, L2, reason_w[r] * e.weight);
                // The priority head learns from incidents only: the other
                // categories are normal but for a rare deadline, and would
                // teach it little but "normal".
                if let Some(p) = e
                    .priority
                    .filter(|_| e.category == Category::Incident)
                    .map(priority_index)
                {
                    priority.step(&e.features, p, rate, L2, priority_w[p] * e.weight);
                }
            }
        }
        Model {
            category,
            reason,
            priority: (priority_count.iter().sum::<f32>() > 0.0).then_some(priority),
            temperature: 1.0,
            trained_on: u32::try_from(examples.len()).unwrap_or(u32::MAX),
        }
    }

    /// The same model with its category scores divided by `temperature`.
    pub fn calibrated(mut self, temperature: f32) -> Model {
        self.temperature = temperature;
        self
    }

    pub fn predict(&self, x: &Features) -> Prediction {
        let mut category = [0f32; 4];
        category.copy_from_slice(&self.category.probabilities(x));
        let mut reason = [0f32; 6];
        reason.copy_from_slice(&self.reason.probabilities(x));
        let priority = self.priority.as_ref().map(|head| {
            let mut p = [0f32; 3];
            p.copy_from_slice(&head.probabilities(x));
            p
        });
        Prediction {
            category,
            reason,
            priority,
        }
    }

    /// The features that pushed most towards `category` (name, weight).
    pub fn top_features(
        &self,
        x: &Features,
        reading: &Reading,
        rule_hits: &[(String, f32)],
        category: Category,
        n: usize,
    ) -> Vec<(String, f32)> {
        Self::top_of(
            &self.category,
            category_index(category),
            x,
            reading,
            rule_hits,
            n,
        )
    }

    /// The features that pushed most towards `priority` (name, weight);
    /// nothing without a priority head.
    pub fn top_priority_features(
        &self,
        x: &Features,
        reading: &Reading,
        rule_hits: &[(String, f32)],
        priority: Priority,
        n: usize,
    ) -> Vec<(String, f32)> {
        match &self.priority {
            Some(head) => Self::top_of(head, priority_index(priority), x, reading, rule_hits, n),
            None => Vec::new(),
        }
    }

    fn top_of(
        head: &Head,
        class: usize,
        x: &Features,
        reading: &Reading,
        rule_hits: &[(String, f32)],
        n: usize,
    ) -> Vec<(String, f32)> {
        let mut seen = std::collections::HashSet::new();
        let mut named: Vec<(String, f32)> = Vec::new();
        for_each_feature(reading, rule_hits, false, |name, _| {
            let bucket = (fnv1a(name.as_bytes()) as usize % DIMS) as u32;
            if !seen.insert(bucket) {
                return;
            }
            if let Ok(k) = x.binary_search_by_key(&bucket, |(i, _)| *i) {
                let c = head.contribution(class, bucket, x[k].1);
                if c > 0.0 {
                    named.push((name.to_string(), c));
                }
            }
        });
        named.sort_by(|a, b| b.1.total_cmp(&a.1));
        named.truncate(n);
        named
    }

    /// The model as bytes: magic, example count, temperature, number of
    /// heads, then per head its class count and its non-zero weights, each
    /// as the distance from the last one's index (a LEB128 varint) and the
    /// weight as bfloat16. Rounding to bfloat16 (8 significant bits)
    /// changes the probabilities by well under a percent and keeps the
    /// file, built into the binary, small.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&self.trained_on.to_le_bytes());
        out.extend_from_slice(&self.temperature.to_le_bytes());
        let heads: Vec<&Head> = [&self.category, &self.reason]
            .into_iter()
            .chain(self.priority.as_ref())
            .collect();
        out.extend_from_slice(&(heads.len() as u32).to_le_bytes());
        for head in heads {
            out.extend_from_slice(&(head.classes as u32).to_le_bytes());
            let mut nonzero: Vec<(u32, u16)> = head
                .weights
                .iter()
                .enumerate()
                .map(|(i, w)| (head.file_index(i) as u32, to_bf16(*w)))
                .filter(|(_, w)| from_bf16(*w) != 0.0)
                .collect();
            nonzero.sort_unstable_by_key(|(i, _)| *i);
            out.extend_from_slice(&(nonzero.len() as u32).to_le_bytes());
            let mut last = 0u32;
            for (i, w) in nonzero {
                put_varint(&mut out, i - last);
                last = i;
                out.extend_from_slice(&w.to_le_bytes());
            }
        }
        out
    }

    /// Reads a model written by [`Model::to_bytes`] (this version or the
    /// two before).
    ///
    /// # Errors
    ///
    /// When the bytes are not a model of a known version.
    pub fn from_bytes(bytes: &[u8]) -> Result<Model, ModelError> {
        let mut r = Reader { bytes, at: 0 };
        let version = match r.take(8)? {
            m if m == MAGIC => 3,
            m if m == MAGIC_V2 => 2,
            m if m == MAGIC_V1 => 1,
            _ => return Err(ModelError("not a servicedesk model (wrong magic)".into())),
        };
        let compact = version >= 2;
        let trained_on = r.u32()?;
        let (temperature, count) = if version >= 3 {
            let t = f32::from_le_bytes(r.take(4)?.try_into().expect("4 bytes"));
            if !(t.is_finite() && t > 0.0) {
                return Err(ModelError(format!("temperature {t} is not positive")));
            }
            (t, r.u32()? as usize)
        } else {
            (1.0, 2)
        };
        if !(2..=3).contains(&count) {
            return Err(ModelError(format!("expected 2 or 3 heads, found {count}")));
        }
        let mut heads = Vec::new();
        for expected in [4usize, REASONS.len(), Priority::ALL.len()]
            .into_iter()
            .take(count)
        {
            let classes = r.u32()? as usize;
            if classes != expected {
                return Err(ModelError(format!(
                    "expected {expected} classes, found {classes}"
                )));
            }
            let mut head = Head::new(classes);
            let n = r.u32()? as usize;
            let mut index = 0usize;
            for _ in 0..n {
                let w = if compact {
                    index += r.varint()? as usize;
                    from_bf16(u16::from_le_bytes([r.u8()?, r.u8()?]))
                } else {
                    index = r.u32()? as usize;
                    f32::from_le_bytes(r.take(4)?.try_into().expect("4 bytes"))
                };
                if index >= head.weights.len() {
                    return Err(ModelError("weight index out of range".into()));
                }
                let at = head.mem_index(index);
                *head
                    .weights
                    .get_mut(at)
                    .ok_or_else(|| ModelError("weight index out of range".into()))? = w;
            }
            heads.push(head);
        }
        if r.at != bytes.len() {
            return Err(ModelError("trailing bytes after the last head".into()));
        }
        let priority = (count == 3).then(|| heads.pop()).flatten();
        let reason = heads.pop().expect("two heads");
        let category = heads.pop().expect("two heads");
        Ok(Model {
            category,
            reason,
            priority,
            temperature,
            trained_on,
        })
    }
}

/// The model shipped with the binary, if it was built with one
/// (`config/model.bin`, written by `servicedesk train`).
pub const BUILTIN: &[u8] = include_bytes!("../../config/model.bin");

/// Loads the model from `path`, or the built-in one.
///
/// # Errors
///
/// When the file cannot be read or is not a model.
pub fn load(path: Option<&std::path::Path>) -> anyhow::Result<Option<Model>> {
    let bytes = match path {
        Some(p) => std::fs::read(p)
            .map_err(|e| anyhow::anyhow!("[triage] model_file {}: {e}", p.display()))?,
        None if BUILTIN.is_empty() => return Ok(None),
        None => BUILTIN.to_vec(),
    };
    Model::from_bytes(&bytes).map(Some).map_err(|e| {
        anyhow::anyhow!(
            "{}: {e}",
            path.map(|p| p.display().to_string())
                .unwrap_or_else(|| "built-in model".into())
        )
    })
}

/// bfloat16 of `w`: the upper half of its bits, rounded to nearest even.
fn to_bf16(w: f32) -> u16 {
    let bits = w.to_bits();
    let round = 0x7fff + ((bits >> 16) & 1);
    (bits.wrapping_add(round) >> 16) as u16
}

fn from_bf16(h: u16) -> f32 {
    f32::from_bits(u32::from(h) << 16)
}

fn put_varint(out: &mut Vec<u8>, mut v: u32) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Reads a model file front to back.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], ModelError> {
        let s = self
            .bytes
            .get(self.at..self.at + n)
            .ok_or_else(|| ModelError("truncated; run `servicedesk train` again".into()))?;
        self.at += n;
        Ok(s)
    }

    fn u8(&mut self) -> Result<u8, ModelError> {
        Ok(self.take(1)?[0])
    }

    fn u32(&mut self) -> Result<u32, ModelError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn varint(&mut self) -> Result<u32, ModelError> {
        let mut v = 0u32;
        for shift in (0..35).step_by(7) {
            let b = self.u8()?;
            v |= u32::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(ModelError(
            "bad varint; run `servicedesk train` again".into(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ex(subject: &str, body: &str, category: Category, reason: Option<ChargeReason>) -> Example {
        Example {
            features: features(&Reading::of(subject, body), &[]),
            rule_shares: [0.0; 4],
            category,
            reason,
            priority: Some(if category == Category::Incident {
                Priority::High
            } else {
                Priority::Normal
            }),
            weight: 1.0,
        }
    }

    #[test]
    fn learns_and_round_trips() {
        let data = vec![
            ex(
                "Storing",
                "De module werkt niet meer",
                Category::Incident,
                None,
            ),
            ex(
                "Panne",
                "Le logiciel ne fonctionne plus",
                Category::Incident,
                None,
            ),
            ex(
                "Vraag",
                "Hoe kan ik een rapport maken?",
                Category::Question,
                None,
            ),
            ex(
                "Question",
                "Comment faire un export ?",
                Category::Question,
                None,
            ),
            ex(
                "Opleiding",
                "Opleiding voor nieuwe collega's",
                Category::Question,
                Some(ChargeReason::Training),
            ),
        ];
        let model = Model::train(&data, 30).calibrated(0.7);
        let p = model.predict(&features(&Reading::of("", "het programma werkt niet"), &[]));
        assert!(p.category[1] > p.category[0], "{p:?}");
        let back = Model::from_bytes(&model.to_bytes()).unwrap();
        // Rounded once, the weights stay as they are.
        assert_eq!(Model::from_bytes(&back.to_bytes()).unwrap(), back);
        let text = features(&Reading::of("Panne", "het programma werkt niet"), &[]);
        let (p, q) = (model.predict(&text), back.predict(&text));
        for (a, b) in p.category.iter().zip(q.category.iter()) {
            assert!((a - b).abs() < 0.01, "{p:?} {q:?}");
        }
        assert_eq!(back.temperature, 0.7);
        assert!(back.priority.is_some());
        assert!(Model::from_bytes(b"garbage").is_err());
        assert!(Model::from_bytes(&model.to_bytes()[..30]).is_err());
    }
}
