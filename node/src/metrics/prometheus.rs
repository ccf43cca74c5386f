//! Prometheus text exposition (format 0.0.4) of metric families, as Qdrant renders them: a
//! family without samples is left out entirely, labels keep their given order, every name may
//! carry the configured `service.metrics_prefix`.

use std::fmt::Write;

use super::stats::Snapshot;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

pub type Labels = Vec<(&'static str, String)>;

/// One sample: a value, or a histogram `(count, sum in seconds, cumulative buckets in seconds)`.
#[derive(Debug, Clone)]
pub enum Value {
    Number(f64),
    Histogram {
        count: u64,
        sum: f64,
        buckets: Vec<(f64, u64)>,
    },
}

/// Collects families and renders them in the order they were added.
pub struct Exposition {
    prefix: String,
    out: String,
}

impl Exposition {
    pub fn new(prefix: Option<&str>) -> Self {
        Exposition {
            prefix: prefix.unwrap_or_default().to_string(),
            out: String::new(),
        }
    }

    pub fn finish(self) -> String {
        self.out
    }

    /// A family of plain samples (counter or gauge); nothing when `samples` is empty.
    pub fn family(&mut self, name: &str, help: &str, kind: Kind, samples: Vec<(Labels, f64)>) {
        let samples = samples
            .into_iter()
            .map(|(labels, v)| (labels, Value::Number(v)))
            .collect();
        self.push(name, help, kind, samples);
    }

    /// A family with one unlabelled sample.
    pub fn single(&mut self, name: &str, help: &str, kind: Kind, value: f64) {
        self.family(name, help, kind, vec![(Vec::new(), value)]);
    }

    pub fn push(&mut self, name: &str, help: &str, kind: Kind, samples: Vec<(Labels, Value)>) {
        if samples.is_empty() {
            return;
        }
        let name = format!("{}{name}", self.prefix);
        let out = &mut self.out;
        let _ = writeln!(out, "# HELP {name} {}", escape_help(help));
        let _ = writeln!(out, "# TYPE {name} {}", kind.name());
        for (labels, value) in samples {
            match value {
                Value::Number(v) => {
                    let _ = writeln!(out, "{name}{} {}", render_labels(&labels, None), number(v));
                }
                Value::Histogram { count, sum, buckets } => {
                    for (le, n) in &buckets {
                        let le = number(*le);
                        let _ = writeln!(out, "{name}_bucket{} {n}", render_labels(&labels, Some(&le)));
                    }
                    let _ = writeln!(out, "{name}_bucket{} {count}", render_labels(&labels, Some("+Inf")));
                    let _ = writeln!(out, "{name}_sum{} {}", render_labels(&labels, None), number(sum));
                    let _ = writeln!(out, "{name}_count{} {count}", render_labels(&labels, None));
                }
            }
        }
    }
}

/// The histogram sample of response statistics, in seconds.
pub fn histogram(s: &Snapshot) -> Value {
    Value::Histogram {
        count: s.count,
        sum: s.total_micros as f64 / 1e6,
        buckets: s.histogram.iter().map(|(le, n)| (f64::from(*le) / 1e6, *n)).collect(),
    }
}

fn render_labels(labels: &Labels, le: Option<&str>) -> String {
    if labels.is_empty() && le.is_none() {
        return String::new();
    }
    let mut s = String::from("{");
    let mut first = true;
    for (name, value) in labels
        .iter()
        .map(|(n, v)| (*n, v.as_str()))
        .chain(le.map(|le| ("le", le)))
    {
        if !first {
            s.push(',');
        }
        first = false;
        let _ = write!(s, "{name}=\"{}\"", escape_label(value));
    }
    s.push('}');
    s
}

fn escape_label(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

fn escape_help(v: &str) -> String {
    v.replace('\\', "\\\\").replace('\n', "\\n")
}

fn number(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        format!("{v}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_families_labels_and_histograms() {
        let mut e = Exposition::new(Some("q_"));
        e.single("collections_total", "number of collections", Kind::Gauge, 2.0);
        e.family("empty", "left out", Kind::Gauge, Vec::new());
        e.family(
            "collection_points",
            "approximate amount of points per collection",
            Kind::Gauge,
            vec![(vec![("id", "a\"b".to_string())], 3.0)],
        );
        e.push(
            "rest_responses_duration_seconds",
            "response duration histogram",
            Kind::Histogram,
            vec![(
                vec![("method", "GET".into())],
                Value::Histogram {
                    count: 3,
                    sum: 0.25,
                    buckets: vec![(0.001, 1), (0.5, 2)],
                },
            )],
        );
        let text = e.finish();
        let expected = "# HELP q_collections_total number of collections\n\
# TYPE q_collections_total gauge\n\
q_collections_total 2\n\
# HELP q_collection_points approximate amount of points per collection\n\
# TYPE q_collection_points gauge\n\
q_collection_points{id=\"a\\\"b\"} 3\n\
# HELP q_rest_responses_duration_seconds response duration histogram\n\
# TYPE q_rest_responses_duration_seconds histogram\n\
q_rest_responses_duration_seconds_bucket{method=\"GET\",le=\"0.001\"} 1\n\
q_rest_responses_duration_seconds_bucket{method=\"GET\",le=\"0.5\"} 2\n\
q_rest_responses_duration_seconds_bucket{method=\"GET\",le=\"+Inf\"} 3\n\
q_rest_responses_duration_seconds_sum{method=\"GET\"} 0.25\n\
q_rest_responses_duration_seconds_count{method=\"GET\"} 3\n";
        assert_eq!(text, expected);
    }
}
