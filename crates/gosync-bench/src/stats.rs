//! Samples, medians and ratios.

use std::time::Duration;

/// Which direction of a measured value is better.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Better {
    /// Throughput (Mops/s): more is better.
    Higher,
    /// Latency (ns/op): less is better.
    Lower,
}

impl Better {
    /// Words for a table header.
    pub fn describe(self) -> &'static str {
        match self {
            Better::Higher => "higher is better",
            Better::Lower => "lower is better",
        }
    }
}

/// One measurement of one implementation in one case (one round).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sample {
    /// The measured value, in the table's unit.
    pub value: f64,
    /// For multi-thread (or multi-task) cases: the smallest and the largest per-thread
    /// share of the operations, each as a fraction of the mean per thread.
    pub shares: Option<Shares>,
}

/// Fairness of a multi-thread measurement: each thread's operation count divided by the mean
/// count per thread. A perfectly fair run has `min == max == 1.0`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Shares {
    /// The slowest thread's share.
    pub min: f64,
    /// The fastest thread's share.
    pub max: f64,
}

impl Sample {
    /// A sample without fairness information.
    pub fn value(value: f64) -> Self {
        Sample {
            value,
            shares: None,
        }
    }

    /// Throughput in Mops/s and shares from per-thread operation counts over `elapsed`.
    pub fn from_counts(counts: &[u64], elapsed: Duration) -> Self {
        let total: u64 = counts.iter().sum();
        let secs = elapsed.as_secs_f64().max(1e-9);
        Sample {
            value: total as f64 / secs / 1e6,
            shares: shares(counts),
        }
    }
}

/// Min and max share of per-thread counts, or `None` if there are no counts or no operations.
pub fn shares(counts: &[u64]) -> Option<Shares> {
    if counts.is_empty() {
        return None;
    }
    let total: u64 = counts.iter().sum();
    if total == 0 {
        return None;
    }
    let mean = total as f64 / counts.len() as f64;
    let min = *counts.iter().min()? as f64;
    let max = *counts.iter().max()? as f64;
    Some(Shares {
        min: min / mean,
        max: max / mean,
    })
}

/// The median of `values` (the mean of the middle two for an even count); `None` if empty.
pub fn median(values: &[f64]) -> Option<f64> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    Some(if v.len() % 2 == 1 {
        v[mid]
    } else {
        (v[mid - 1] + v[mid]) / 2.0
    })
}

/// Medians of a cell's samples: the value, and (when measured) the min and max shares.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Summary {
    /// Median value.
    pub value: f64,
    /// Median of the per-round min and max shares.
    pub shares: Option<Shares>,
    /// Smallest and largest value over the rounds (the spread).
    pub range: (f64, f64),
}

/// Summarise one cell's samples; `None` if there are none.
pub fn summarise(samples: &[Sample]) -> Option<Summary> {
    let values: Vec<f64> = samples.iter().map(|s| s.value).collect();
    let value = median(&values)?;
    let mins: Vec<f64> = samples
        .iter()
        .filter_map(|s| s.shares.map(|x| x.min))
        .collect();
    let maxs: Vec<f64> = samples
        .iter()
        .filter_map(|s| s.shares.map(|x| x.max))
        .collect();
    let shares = match (median(&mins), median(&maxs)) {
        (Some(min), Some(max)) => Some(Shares { min, max }),
        _ => None,
    };
    let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    Some(Summary {
        value,
        shares,
        range: (lo, hi),
    })
}

/// The best of `values` in the direction `better`; `None` if empty.
pub fn best(values: impl IntoIterator<Item = f64>, better: Better) -> Option<f64> {
    values
        .into_iter()
        .filter(|v| v.is_finite() && *v > 0.0)
        .reduce(|a, b| match better {
            Better::Higher => a.max(b),
            Better::Lower => a.min(b),
        })
}

/// Speed of `value` relative to `best`: above 1.0 means better than `best`, whatever the
/// direction (for ns/op it is `best / value`, for Mops/s `value / best`).
pub fn ratio(value: f64, best: f64, better: Better) -> Option<f64> {
    if !(value > 0.0 && best > 0.0) {
        return None;
    }
    Some(match better {
        Better::Higher => value / best,
        Better::Lower => best / value,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_odd_even_empty() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[f64::NAN, 5.0]), Some(5.0));
    }

    #[test]
    fn shares_of_counts() {
        let s = shares(&[50, 100, 150]).unwrap();
        assert!((s.min - 0.5).abs() < 1e-12);
        assert!((s.max - 1.5).abs() < 1e-12);
        assert_eq!(shares(&[0, 0]), None);
        assert_eq!(shares(&[]), None);
    }

    #[test]
    fn ratio_direction() {
        assert_eq!(ratio(20.0, 10.0, Better::Higher), Some(2.0));
        assert_eq!(ratio(5.0, 10.0, Better::Lower), Some(2.0));
        assert_eq!(ratio(0.0, 10.0, Better::Lower), None);
        assert_eq!(best([3.0, 1.0, 2.0], Better::Lower), Some(1.0));
        assert_eq!(best([3.0, 1.0, 2.0], Better::Higher), Some(3.0));
    }

    #[test]
    fn summary_takes_medians() {
        let samples = [
            Sample {
                value: 1.0,
                shares: Some(Shares { min: 0.2, max: 1.9 }),
            },
            Sample {
                value: 3.0,
                shares: Some(Shares { min: 0.9, max: 1.1 }),
            },
            Sample {
                value: 2.0,
                shares: Some(Shares { min: 0.5, max: 1.5 }),
            },
        ];
        let s = summarise(&samples).unwrap();
        assert_eq!(s.value, 2.0);
        assert_eq!(s.shares, Some(Shares { min: 0.5, max: 1.5 }));
        assert_eq!(s.range, (1.0, 3.0));
    }
}
