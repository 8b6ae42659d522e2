//! Distributions and table rows.

use std::fmt;

pub struct Row {
    pub what: String,
    pub config: String,
    pub unit: &'static str,
    pub samples: Vec<f64>,
    pub target: String,
    /// What Go s3lect gets for the same measurement, computed from its algorithm ("–": none).
    pub go: String,
}

impl Row {
    pub fn new(what: &str, config: &str, unit: &'static str, mut samples: Vec<f64>, target: &str) -> Row {
        samples.sort_by(|a, b| a.partial_cmp(b).unwrap());
        Row { what: what.into(), config: config.into(), unit, samples, target: target.into(), go: "–".into() }
    }

    /// Go s3lect's figure for this row, computed from its algorithm.
    pub fn go(mut self, figure: String) -> Row {
        self.go = figure;
        self
    }

    fn pct(&self, p: f64) -> f64 {
        let i = ((self.samples.len() as f64 - 1.0) * p).round() as usize;
        self.samples[i]
    }
}

fn num(v: f64, unit: &str) -> String {
    if v >= 100.0 { format!("{v:.0} {unit}") } else { format!("{v:.2} {unit}") }
}

impl fmt::Display for Row {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.samples.is_empty() {
            return write!(f, "| {} | {} | 0 | – | – | – | – | {} | {} |", self.what, self.config, self.go, self.target);
        }
        let u = self.unit;
        write!(
            f,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            self.what,
            self.config,
            self.samples.len(),
            num(self.samples[0], u),
            num(self.pct(0.5), u),
            num(self.pct(0.99), u),
            num(*self.samples.last().unwrap(), u),
            self.go,
            self.target
        )
    }
}
