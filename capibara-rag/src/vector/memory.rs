//! The vector matrix in transparent huge pages (Linux): a matrix of more than one huge page is
//! grown into fresh buffers that are advised `MADV_HUGEPAGE` before their first write, so the
//! kernel backs them with 2 MiB pages where it can.
//!
//! Why: an exact scan streams the whole matrix, and with 4 KiB pages the hardware prefetchers stop
//! at every page boundary and the TLB misses every 4 KiB. On the 2-core EPYC of
//! `benches/vector/run-exact` a streaming read of 153.6 MB ran at about 20 GB/s in 4 KiB pages and
//! 31 GB/s in huge pages (THP in its default `madvise` mode, where nothing is huge unless asked).
//! Elsewhere, or when the kernel has no huge page to give, this changes nothing.
//!
//! `unsafe` here: the `madvise` call, on a range inside a live allocation.

#![allow(unsafe_code)]

/// The huge page size; matrices smaller than this stay in ordinary pages.
const HUGE_PAGE: usize = 2 << 20;

/// Makes room for `additional` more values in `vectors`. When the vector must grow past one huge
/// page, the values move to a fresh buffer of twice the capacity (or what is needed) that is
/// advised for huge pages before they are copied in.
pub(crate) fn reserve(vectors: &mut Vec<f32>, additional: usize) {
    let needed = vectors.len().saturating_add(additional);
    if needed <= vectors.capacity() {
        return;
    }
    let capacity = needed.max(vectors.capacity().saturating_mul(2));
    if capacity.saturating_mul(size_of::<f32>()) < HUGE_PAGE {
        vectors.reserve(additional);
        return;
    }
    let mut grown: Vec<f32> = Vec::with_capacity(capacity);
    advise_huge_pages(&mut grown);
    grown.extend_from_slice(vectors);
    *vectors = grown;
}

/// Asks for huge pages over the whole huge pages inside `buffer`'s allocation.
fn advise_huge_pages(buffer: &mut Vec<f32>) {
    #[cfg(target_os = "linux")]
    {
        let start = buffer.as_mut_ptr() as usize;
        let end = start + buffer.capacity() * size_of::<f32>();
        let (first, last) = (start.next_multiple_of(HUGE_PAGE), end / HUGE_PAGE * HUGE_PAGE);
        if last > first {
            // SAFETY: [first, last) lies inside the buffer's allocation, which outlives the call;
            // MADV_HUGEPAGE changes how the kernel backs those pages, not their contents. A
            // refusal (THP disabled) leaves ordinary pages, so the result is not checked.
            unsafe { libc::madvise(first as *mut libc::c_void, last - first, libc::MADV_HUGEPAGE) };
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = buffer;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserving_keeps_the_values_and_makes_room() {
        let mut small: Vec<f32> = vec![1.0, 2.0];
        reserve(&mut small, 10);
        assert!(small.capacity() >= 12);
        assert_eq!(small, [1.0, 2.0]);

        // Past a huge page: a fresh buffer, the values copied.
        let mut large: Vec<f32> = (0..300_000).map(|i| i as f32).collect();
        reserve(&mut large, 400_000);
        assert!(large.capacity() >= 700_000);
        assert_eq!(large.len(), 300_000);
        assert!(large.iter().enumerate().all(|(i, v)| *v == i as f32));
        let capacity = large.capacity();
        reserve(&mut large, 1);
        assert_eq!(large.capacity(), capacity, "no move while there is room");
    }
}
