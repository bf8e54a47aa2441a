//! The few FAISS calls the `faiss` crate does not offer safely, made through `faiss-sys`:
//!
//! - a search through a shared reference: FAISS's CPU `Index::search` is a `const` method, safe to
//!   call from several threads at once, but the crate only exposes it as `&mut self` for
//!   `IndexImpl`, which would serialise every search of a collection (FAISS 1.12 does add each HNSW
//!   search's counters to a global statistics struct without a lock; nothing here reads them);
//! - a search restricted by a bitmap [`IdSelector`](faiss::selector::IdSelector): the crate's
//!   `SearchParameters::new` leaks the selector, and its bitmap selector borrows the bitmap without
//!   a lifetime; here both live exactly as long as the call;
//! - the stored rows of an `IndexFlat`, written in place so that the index mirrors a collection's
//!   slots (replacements and swap-removes) without copying the whole matrix.
//!
//! `unsafe` here: calls into the FAISS C API, each with pointers to buffers sized for what FAISS
//! writes or reads.

#![allow(unsafe_code)]

use faiss::index::NativeIndex;
use faiss_sys::{FaissIDSelector, FaissIndex, FaissSearchParameters, idx_t};

use capibara_core::{Error, Result};

/// An error of the FAISS call `what`, with FAISS's last message.
fn failed(what: &str, code: std::os::raw::c_int) -> Error {
    // SAFETY: returns a pointer to a thread-local C string (or null), valid until the next call.
    let message = unsafe {
        let text = faiss_sys::faiss_get_last_error();
        if text.is_null() {
            format!("code {code}")
        } else {
            std::ffi::CStr::from_ptr(text).to_string_lossy().into_owned()
        }
    };
    Error::internal(format!("vector store: FAISS {what}: {message}"))
}

/// The best `k` labels (FAISS ids, `-1` where fewer exist) and scores of each of the
/// `queries.len() / d` queries, `k` per query, row by row. With `allowed`, only ids whose bit is
/// set in it (bit `i % 8` of byte `i / 8`) are returned.
pub(super) fn search<I: NativeIndex<Inner = FaissIndex>>(
    index: &I,
    d: usize,
    queries: &[f32],
    k: usize,
    allowed: Option<&[u8]>,
) -> Result<(Vec<f32>, Vec<i64>)> {
    let n = queries.len().checked_div(d).unwrap_or(0);
    let mut scores = vec![f32::NEG_INFINITY; n * k];
    let mut labels: Vec<idx_t> = vec![-1; n * k];
    if n == 0 || k == 0 {
        return Ok((scores, labels));
    }
    let (n_idx, k_idx) = (n as idx_t, k as idx_t);
    let index = index.inner_ptr().cast_const();
    let Some(bitmap) = allowed else {
        // SAFETY: `queries` holds n·d floats; `scores` and `labels` n·k values each; the index
        // is only read (no writer holds it: writes need the collection's write lock).
        let code = unsafe {
            faiss_sys::faiss_Index_search(
                index,
                n_idx,
                queries.as_ptr(),
                k_idx,
                scores.as_mut_ptr(),
                labels.as_mut_ptr(),
            )
        };
        return if code == 0 { Ok((scores, labels)) } else { Err(failed("search", code)) };
    };
    let mut selector: *mut faiss_sys::FaissIDSelectorBitmap = std::ptr::null_mut();
    // SAFETY: FAISS keeps a pointer to `bitmap` (not a copy); it outlives the selector, freed below.
    let code = unsafe { faiss_sys::faiss_IDSelectorBitmap_new(&mut selector, bitmap.len(), bitmap.as_ptr()) };
    if code != 0 {
        return Err(failed("selector", code));
    }
    let selector = selector.cast::<FaissIDSelector>();
    let mut params: *mut FaissSearchParameters = std::ptr::null_mut();
    // SAFETY: `selector` is valid; the parameters only point at it.
    let code = unsafe { faiss_sys::faiss_SearchParameters_new(&mut params, selector) };
    let result = if code != 0 {
        Err(failed("search parameters", code))
    } else {
        // SAFETY: as for the plain search, plus `params`, valid until freed below.
        let code = unsafe {
            faiss_sys::faiss_Index_search_with_params(
                index,
                n_idx,
                queries.as_ptr(),
                k_idx,
                params.cast_const(),
                scores.as_mut_ptr(),
                labels.as_mut_ptr(),
            )
        };
        // SAFETY: created above and no longer used; freeing them does not free the other.
        unsafe { faiss_sys::faiss_SearchParameters_free(params) };
        if code == 0 { Ok(()) } else { Err(failed("filtered search", code)) }
    };
    // SAFETY: created above; the parameters that pointed at it are gone.
    unsafe { faiss_sys::faiss_IDSelector_free(selector) };
    result.map(|()| (scores, labels))
}

/// The stored rows of a flat index, for writing in place.
pub(super) fn flat_rows_mut(index: &mut faiss::index::flat::FlatIndexImpl) -> Result<&mut [f32]> {
    let mut data: *mut f32 = std::ptr::null_mut();
    let mut len = 0usize;
    // SAFETY: a flat index's pointer cast to `IndexFlat` (checked by FAISS's dynamic cast).
    let flat = unsafe { faiss_sys::faiss_IndexFlat_cast(index.inner_ptr()) };
    if flat.is_null() {
        return Err(Error::internal("vector store: the FAISS index is not flat"));
    }
    // SAFETY: writes the start and length (in floats) of the index's storage.
    unsafe { faiss_sys::faiss_IndexFlat_xb(flat, &mut data, &mut len) };
    if data.is_null() || len == 0 {
        return Ok(&mut []);
    }
    // SAFETY: `len` floats from `data` are the index's storage, which stays put while `index` is
    // borrowed mutably (only adding or removing rows moves it).
    Ok(unsafe { std::slice::from_raw_parts_mut(data, len) })
}
