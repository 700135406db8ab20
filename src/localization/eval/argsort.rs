//! numpy's generic `argsort` (kind "quicksort") of f64 values, step for step, so that equal
//! scores come out in the order the reference's evaluation saw them.
//!
//! The ranking of detections and proposals decides which of two equally scored segments is
//! matched first, so the order of ties changes AP and recall. numpy sorts indices with an
//! introsort: median-of-three quicksort partitions while a range holds more than 16 elements,
//! insertion sort below that, heapsort once the depth budget (2·⌊log2 n⌋) is spent. It is not
//! stable above 16 elements. This is the sort of numpy < 1.25 and of any numpy on a CPU without
//! AVX2 / AVX-512; newer numpy on such CPUs dispatches to SIMD sorts (x86-simd-sort) that order
//! ties differently again, so there the reference's own figures on tied scores depend on the
//! machine. The golden fixture is made with the SIMD sorts switched off.

/// numpy's `a < b` for floats: NaN sorts after every number.
fn less(a: f64, b: f64) -> bool {
    a < b || (b.is_nan() && !a.is_nan())
}

/// Ranges of at most this many elements plus one are insertion-sorted (numpy's SMALL_QUICKSORT).
const SMALL_QUICKSORT: usize = 15;

/// Indices that sort `v` ascending, as `np.argsort(v)` (default kind) returns them.
pub fn argsort(v: &[f64]) -> Vec<usize> {
    let mut t: Vec<usize> = (0..v.len()).collect();
    if v.len() < 2 {
        return t;
    }
    // Pending (low, high, depth budget) ranges: the larger side of each partition.
    let mut stack: Vec<(usize, usize, i64)> = Vec::new();
    let (mut pl, mut pr) = (0usize, v.len() - 1);
    let mut depth = 2 * (usize::BITS - 1 - v.len().leading_zeros()) as i64;
    loop {
        if depth < 0 {
            heapsort(v, &mut t[pl..=pr]);
        } else {
            while pr - pl > SMALL_QUICKSORT {
                let pm = pl + ((pr - pl) >> 1);
                if less(v[t[pm]], v[t[pl]]) {
                    t.swap(pm, pl);
                }
                if less(v[t[pr]], v[t[pm]]) {
                    t.swap(pr, pm);
                }
                if less(v[t[pm]], v[t[pl]]) {
                    t.swap(pm, pl);
                }
                let vp = v[t[pm]];
                let (mut pi, mut pj) = (pl, pr - 1);
                t.swap(pm, pj);
                loop {
                    pi += 1;
                    while less(v[t[pi]], vp) {
                        pi += 1;
                    }
                    pj -= 1;
                    while less(vp, v[t[pj]]) {
                        pj -= 1;
                    }
                    if pi >= pj {
                        break;
                    }
                    t.swap(pi, pj);
                }
                t.swap(pi, pr - 1);
                depth -= 1;
                if pi - pl < pr - pi {
                    stack.push((pi + 1, pr, depth));
                    pr = pi - 1;
                } else {
                    stack.push((pl, pi - 1, depth));
                    pl = pi + 1;
                }
            }
            insertion_sort(v, &mut t[pl..=pr]);
        }
        match stack.pop() {
            Some((l, r, d)) => (pl, pr, depth) = (l, r, d),
            None => return t,
        }
    }
}

/// `argsort(v)` reversed: the reference's `argsort()[::-1]`, largest first.
pub fn argsort_descending(v: &[f64]) -> Vec<usize> {
    let mut t = argsort(v);
    t.reverse();
    t
}

fn insertion_sort(v: &[f64], t: &mut [usize]) {
    for i in 1..t.len() {
        let vi = t[i];
        let mut j = i;
        while j > 0 && less(v[vi], v[t[j - 1]]) {
            t[j] = t[j - 1];
            j -= 1;
        }
        t[j] = vi;
    }
}

/// numpy's `aheapsort`, on 1-based positions as it writes them. Reached only on a range that
/// defeats median-of-three 2·⌊log2 n⌋ times; the fixture has such an order (a quicksort
/// killer, tests/fixtures/tal_eval).
fn heapsort(v: &[f64], t: &mut [usize]) {
    let mut n = t.len();
    let sift = |t: &mut [usize], start: usize, n: usize| {
        let tmp = t[start - 1];
        let (mut i, mut j) = (start, start << 1);
        while j <= n {
            if j < n && less(v[t[j - 1]], v[t[j]]) {
                j += 1;
            }
            if less(v[tmp], v[t[j - 1]]) {
                t[i - 1] = t[j - 1];
                i = j;
                j += j;
            } else {
                break;
            }
        }
        t[i - 1] = tmp;
    };
    for l in (1..=n >> 1).rev() {
        sift(t, l, n);
    }
    while n > 1 {
        t.swap(0, n - 1);
        n -= 1;
        sift(t, 1, n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorts_and_keeps_small_ranges_stable() {
        let v = [3.0, 1.0, 2.0, 1.0, 3.0, 0.5];
        // Up to 16 elements numpy's argsort is an insertion sort: ties keep their order.
        assert_eq!(argsort(&v), vec![5, 1, 3, 2, 0, 4]);
        assert_eq!(argsort_descending(&v), vec![4, 0, 2, 3, 1, 5]);
    }

    #[test]
    fn long_ranges_sort_and_are_not_stable() {
        let v: Vec<f64> = (0..40).map(|i| ((i * 7) % 3) as f64).collect();
        let t = argsort(&v);
        assert!(t.windows(2).all(|w| v[w[0]] <= v[w[1]]));
        let mut stable: Vec<usize> = (0..v.len()).collect();
        stable.sort_by(|&a, &b| v[a].total_cmp(&v[b]));
        assert_ne!(
            t, stable,
            "numpy's introsort reorders ties above 16 elements"
        );
    }

    #[test]
    fn heapsort_sorts() {
        let v: Vec<f64> = (0..50).map(|i| ((i * 37) % 11) as f64).collect();
        let mut t: Vec<usize> = (0..v.len()).collect();
        heapsort(&v, &mut t);
        assert!(t.windows(2).all(|w| v[w[0]] <= v[w[1]]));
    }

    #[test]
    fn nan_sorts_last() {
        assert_eq!(argsort(&[f64::NAN, 1.0, 0.0]), vec![2, 1, 0]);
    }
}
