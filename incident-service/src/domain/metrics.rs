//! Rules of the incident metrics: which rank a percentile is (the nearest-rank rule, integer
//! arithmetic only, so SQLite and PostgreSQL give identical answers).

/// The rank of the nearest-rank percentile `p` (in %) of `n` values, from 1.
pub fn nearest_rank(p: i64, n: i64) -> i64 {
    Ord::max((p * n + 99) / 100, 1)
}

#[cfg(test)]
mod tests {
    use super::nearest_rank;

    #[test]
    fn nearest_rank_rule() {
        assert_eq!(nearest_rank(90, 10), 9);
        assert_eq!(nearest_rank(90, 11), 10);
        assert_eq!(nearest_rank(90, 1), 1);
        assert_eq!(nearest_rank(50, 4), 2);
        assert_eq!(nearest_rank(100, 7), 7);
    }
}
