//! Response statistics of one (endpoint, status) pair, kept the way Qdrant keeps them
//! (`OperationDurationStatistics`): a count, the lifetime minimum, maximum and total, a
//! histogram over fixed buckets, the time of the last response, and an average over the latest
//! 128 responses smoothed by a sliding window of up to 9.

use chrono::{DateTime, SubsecRound, Utc};

/// Upper bounds of the histogram buckets, in microseconds (Qdrant's
/// `DEFAULT_BUCKET_BOUNDARIES_MICROS`: 1, 5, 10, 20, 50, 100, 500 ms; 1, 5, 10, 50 s).
pub const BUCKET_BOUNDS_MICROS: [f32; 11] = [
    1_000.0,
    5_000.0,
    10_000.0,
    20_000.0,
    50_000.0,
    100_000.0,
    500_000.0,
    1_000_000.0,
    5_000_000.0,
    10_000_000.0,
    50_000_000.0,
];

/// How many of the latest durations the average is taken over.
const RECENT: usize = 128;
/// Each recent duration is first averaged with up to this many predecessors.
const WINDOW: usize = 8;

#[derive(Debug, Clone)]
pub struct DurationStats {
    count: u64,
    /// The latest durations (µs), a ring: `next` is where the next one goes.
    recent: Vec<f32>,
    next: usize,
    min: Option<f32>,
    max: Option<f32>,
    total_micros: u64,
    /// Responses per bucket (not cumulative); slower than the last bound: in none.
    buckets: [u64; BUCKET_BOUNDS_MICROS.len()],
    /// The last response, or when this entry was made (Qdrant's `last_response_date`).
    last: DateTime<Utc>,
}

impl Default for DurationStats {
    fn default() -> Self {
        DurationStats {
            count: 0,
            recent: Vec::new(),
            next: 0,
            min: None,
            max: None,
            total_micros: 0,
            buckets: [0; BUCKET_BOUNDS_MICROS.len()],
            last: now(),
        }
    }
}

/// Qdrant rounds these timestamps to hundredths of a second.
fn now() -> DateTime<Utc> {
    Utc::now().round_subsecs(2)
}

/// A copy of the statistics taken for rendering.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    pub count: u64,
    /// Smoothed mean of the latest 128 durations (µs); `None` before the first response.
    pub avg_micros: Option<f32>,
    pub min_micros: Option<f32>,
    pub max_micros: Option<f32>,
    pub total_micros: u64,
    pub last_responded: DateTime<Utc>,
    /// `(upper bound µs, responses at or under it)`, cumulative, one per bound.
    pub histogram: Vec<(f32, u64)>,
}

impl DurationStats {
    pub fn add(&mut self, seconds: f64) {
        let micros = (seconds * 1e6) as f32;
        self.count += 1;
        self.total_micros += micros as u64;
        self.min = Some(self.min.map_or(micros, |m| m.min(micros)));
        self.max = Some(self.max.map_or(micros, |m| m.max(micros)));
        if let Some(i) = BUCKET_BOUNDS_MICROS.iter().position(|b| micros <= *b) {
            self.buckets[i] += 1;
        }
        if self.recent.len() < RECENT {
            self.recent.push(micros);
        } else {
            self.recent[self.next] = micros;
        }
        self.next = (self.next + 1) % RECENT;
        self.last = now();
    }

    /// The recent durations, oldest first.
    fn chronological(&self) -> Vec<f32> {
        if self.recent.len() < RECENT {
            return self.recent.clone();
        }
        let (newer, older) = self.recent.split_at(self.next);
        older.iter().chain(newer).copied().collect()
    }

    /// Mean of the per-point window means (each point with up to `WINDOW` predecessors).
    fn smoothed_mean(&self) -> Option<f32> {
        let data = self.chronological();
        if data.is_empty() {
            return None;
        }
        let windows: f32 = (0..data.len())
            .map(|i| {
                let w = &data[i.saturating_sub(WINDOW)..=i];
                w.iter().sum::<f32>() / w.len() as f32
            })
            .sum();
        Some(windows / data.len() as f32)
    }

    pub fn snapshot(&self) -> Snapshot {
        let mut cumulative = 0;
        let histogram = BUCKET_BOUNDS_MICROS
            .iter()
            .zip(self.buckets.iter())
            .map(|(le, n)| {
                cumulative += n;
                (*le, cumulative)
            })
            .collect();
        Snapshot {
            count: self.count,
            avg_micros: self.smoothed_mean(),
            min_micros: self.min,
            max_micros: self.max,
            total_micros: self.total_micros,
            last_responded: self.last,
            histogram,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_extremes_buckets_and_the_recent_average() {
        let mut s = DurationStats::default();
        for ms in [2.0, 30.0, 700.0] {
            s.add(ms / 1000.0);
        }
        let snap = s.snapshot();
        assert_eq!(snap.count, 3);
        assert_eq!(snap.min_micros, Some(2000.0));
        assert_eq!(snap.max_micros, Some(700_000.0));
        assert_eq!(snap.total_micros, 732_000);
        // cumulative: <=1ms 0, <=5ms 1, ... <=50ms 2, ... <=1s 3
        let at = |le: f32| snap.histogram.iter().find(|(b, _)| *b == le).unwrap().1;
        assert_eq!(
            (at(1_000.0), at(5_000.0), at(50_000.0), at(500_000.0), at(1_000_000.0)),
            (0, 1, 2, 2, 3)
        );
        // window means: 2000, 16000, 244000 -> their mean
        let avg = snap.avg_micros.unwrap();
        assert!((avg - (2000.0 + 16000.0 + 244000.0) / 3.0).abs() < 1.0, "{avg}");
    }

    #[test]
    fn the_average_forgets_old_responses() {
        let mut s = DurationStats::default();
        for _ in 0..RECENT {
            s.add(1.0);
        }
        for _ in 0..RECENT {
            s.add(0.001);
        }
        assert_eq!(s.snapshot().avg_micros, Some(1000.0));
        assert_eq!(s.snapshot().max_micros, Some(1_000_000.0));
        assert_eq!(DurationStats::default().snapshot().avg_micros, None);
    }
}
