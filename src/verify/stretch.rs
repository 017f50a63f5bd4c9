//! The comparison step of the checker: a stretch of committed output against a key's
//! input at its cursor, in one pass over the bytes that also checks every line start the
//! two share (it must be the key) and counts the LFs.
//!
//! Why one pass: the input check (a line of another key inside an input, echoed in the
//! output, would otherwise pass) used to read every input a second time. 32 bytes a step
//! with AVX2 where the CPU has it, else 16 with SSE2 (every x86-64 has it), byte by byte
//! elsewhere and for the tail; the three are tested against each other.

/// How far ahead of a cursor its input (and the chunk) is fetched into the cache.
pub const PREFETCH_AHEAD: usize = 1024;

/// Asks the CPU to start loading `bytes[at]`'s cache line. With finely interleaved keys the
/// comparison hops between as many input streams as there are keys, a run of a line or
/// two each; the hardware prefetcher does not follow that, so each hop would otherwise
/// wait for memory.
#[inline(always)]
pub fn prefetch(bytes: &[u8], at: usize) {
    #[cfg(target_arch = "x86_64")]
    if at < bytes.len() {
        // SAFETY: a prefetch only hints the cache; the address is inside `bytes`.
        unsafe {
            use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
            _mm_prefetch::<_MM_HINT_T0>(bytes.as_ptr().add(at).cast::<i8>());
        }
    }
}

/// What comparing a stretch of output with a key's input at its cursor found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stretch {
    /// Length of the common prefix, cut at the first input line that does not start with
    /// the key (so every line start inside it is the key's).
    pub matched: usize,
    /// LFs in the first `matched` bytes.
    pub lfs: u64,
    /// Where an input line that does not start with the key begins (at most `matched`).
    pub wrong_line: Option<usize>,
}

/// Compares `out` with `input` and, in the same pass over the input bytes, checks that
/// every line start the two share is `key`: the input check rides on the comparison
/// instead of reading every input a second time. 32 bytes a step with AVX2 where the CPU
/// has it, else 16 with SSE2 (every x86-64 has it), byte by byte elsewhere and for the
/// tail.
pub fn compare_stretch(out: &[u8], input: &[u8], key: u8) -> Stretch {
    #[cfg(target_arch = "x86_64")]
    let (i, lfs) = {
        let steps =
            if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("popcnt") {
                // SAFETY: the CPU has AVX2 and POPCNT (checked just above).
                unsafe { compare_avx2(out, input, key) }
            } else {
                compare_sse2(out, input, key)
            };
        match steps {
            Ok(done) => return done,
            Err(progress) => progress,
        }
    };
    #[cfg(not(target_arch = "x86_64"))]
    let (i, lfs) = (0, 0);
    compare_bytes(out, input, key, i, lfs)
}

/// Byte by byte from `i`, with `lfs` LFs before it.
fn compare_bytes(out: &[u8], input: &[u8], key: u8, mut i: usize, mut lfs: u64) -> Stretch {
    let n = out.len().min(input.len());
    while i < n && out[i] == input[i] {
        if input[i] == b'\n' {
            if input.get(i + 1).is_some_and(|&b| b != key) {
                return Stretch {
                    matched: i + 1,
                    lfs: lfs + 1,
                    wrong_line: Some(i + 1),
                };
            }
            lfs += 1;
        }
        i += 1;
    }
    Stretch {
        matched: i,
        lfs,
        wrong_line: None,
    }
}

/// One step's masks (bit i: byte i of the block) turned into the step's outcome: `Ok`
/// when the stretch ends in this block (a difference, or a line start that is not the
/// key), else the LFs to add. `full` is the mask of a whole block.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn step_outcome(at: usize, same: u32, lf: u32, key: u32, full: u32) -> Result<Stretch, u64> {
    let differ = !same & full;
    // Only the bytes before the first difference count.
    let upto = if differ == 0 {
        full
    } else {
        (1u32 << differ.trailing_zeros()) - 1
    };
    let (lf, wrong) = (lf & upto, lf & !key & upto);
    if wrong != 0 {
        let bit = wrong.trailing_zeros();
        let end = at + bit as usize + 1;
        let before = lf & (((2u64 << bit) - 1) as u32);
        return Ok(Stretch {
            matched: end,
            lfs: u64::from(before.count_ones()),
            wrong_line: Some(end),
        });
    }
    if differ != 0 {
        return Ok(Stretch {
            matched: at + differ.trailing_zeros() as usize,
            lfs: u64::from(lf.count_ones()),
            wrong_line: None,
        });
    }
    Err(u64::from(lf.count_ones()))
}

/// The AVX2 steps, as [`compare_sse2`] with 32-byte blocks.
///
/// # Safety
/// The CPU must have AVX2 and POPCNT.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,popcnt")]
unsafe fn compare_avx2(out: &[u8], input: &[u8], key: u8) -> Result<Stretch, (usize, u64)> {
    use std::arch::x86_64::{
        __m256i, _mm256_cmpeq_epi8, _mm256_loadu_si256, _mm256_movemask_epi8, _mm256_set1_epi8,
    };
    let n = out.len().min(input.len().saturating_sub(1));
    let (mut i, mut lfs) = (0, 0u64);
    let (lf, keys) = (_mm256_set1_epi8(b'\n' as i8), _mm256_set1_epi8(key as i8));
    // SAFETY: `i + 32 <= n` keeps every load inside both slices (the load at `i + 1` is
    // inside `input`, which is longer than `n`).
    let load =
        |s: &[u8], at: usize| unsafe { _mm256_loadu_si256(s.as_ptr().add(at).cast::<__m256i>()) };
    while i + 32 <= n {
        let block = load(input, i);
        let same = _mm256_movemask_epi8(_mm256_cmpeq_epi8(load(out, i), block)) as u32;
        let lf_mask = _mm256_movemask_epi8(_mm256_cmpeq_epi8(block, lf)) as u32;
        let key_mask = _mm256_movemask_epi8(_mm256_cmpeq_epi8(load(input, i + 1), keys)) as u32;
        match step_outcome(i, same, lf_mask, key_mask, u32::MAX) {
            Ok(done) => {
                return Ok(Stretch {
                    lfs: lfs + done.lfs,
                    ..done
                })
            }
            Err(more) => lfs += more,
        }
        i += 32;
    }
    Err((i, lfs))
}

/// The SSE2 steps: `Ok` when a difference or a wrong line start was found in a block,
/// else `Err((offset, LFs before it))` where fewer than 17 bytes are left.
#[cfg(target_arch = "x86_64")]
fn compare_sse2(out: &[u8], input: &[u8], key: u8) -> Result<Stretch, (usize, u64)> {
    use std::arch::x86_64::{
        __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_set1_epi8,
    };
    let n = out.len().min(input.len().saturating_sub(1));
    let (mut i, mut lfs) = (0, 0u64);
    // SAFETY: SSE2 is part of x86-64; `i + 16 <= n` keeps every load inside both slices
    // (the load at `i + 1` is inside `input`, which is longer than `n`).
    unsafe {
        let (lf, keys) = (_mm_set1_epi8(b'\n' as i8), _mm_set1_epi8(key as i8));
        let load = |s: &[u8], at: usize| _mm_loadu_si128(s.as_ptr().add(at).cast::<__m128i>());
        while i + 16 <= n {
            let block = load(input, i);
            let same = _mm_movemask_epi8(_mm_cmpeq_epi8(load(out, i), block)) as u32;
            let lf_mask = _mm_movemask_epi8(_mm_cmpeq_epi8(block, lf)) as u32;
            let key_mask = _mm_movemask_epi8(_mm_cmpeq_epi8(load(input, i + 1), keys)) as u32;
            match step_outcome(i, same, lf_mask, key_mask, 0xffff) {
                Ok(done) => {
                    return Ok(Stretch {
                        lfs: lfs + done.lfs,
                        ..done
                    })
                }
                Err(more) => lfs += more,
            }
            i += 16;
        }
    }
    Err((i, lfs))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reference: byte by byte, as the SSE2 steps must agree.
    fn naive_stretch(out: &[u8], input: &[u8], key: u8) -> Stretch {
        compare_bytes(out, input, key, 0, 0)
    }

    #[test]
    fn compare_stretch_finds_the_first_difference() {
        let a: Vec<u8> = (0..200u8).map(|b| b | 0x80).collect();
        for diff in [0, 1, 7, 8, 15, 16, 17, 31, 32, 33, 100, 199] {
            let mut b = a.clone();
            b[diff] ^= 1;
            assert_eq!(compare_stretch(&a, &b, 0).matched, diff);
        }
        assert_eq!(compare_stretch(&a, &a[..50], 0).matched, 50);
        assert_eq!(compare_stretch(b"", b"x", 0).matched, 0);
    }

    /// The SSE2 and AVX2 steps agree with the byte-by-byte reference on every length, difference
    /// position and wrong line start, LF counts included.
    #[test]
    fn compare_stretch_equals_the_byte_by_byte_reference() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..20_000 {
            let len = (next() % 80) as usize;
            let input: Vec<u8> = (0..len)
                .map(|_| match next() % 8 {
                    0 => b'\n',
                    1 => b'B',
                    _ => b'A',
                })
                .collect();
            let mut out = input[..(next() as usize % (len + 1))].to_vec();
            if !out.is_empty() && next() % 2 == 0 {
                let at = next() as usize % out.len();
                out[at] ^= 1;
            }
            let expected = naive_stretch(&out, &input, b'A');
            assert_eq!(
                compare_stretch(&out, &input, b'A'),
                expected,
                "{out:?} {input:?}"
            );
            #[cfg(target_arch = "x86_64")]
            {
                let sse2 = match compare_sse2(&out, &input, b'A') {
                    Ok(done) => done,
                    Err((i, lfs)) => compare_bytes(&out, &input, b'A', i, lfs),
                };
                assert_eq!(sse2, expected, "SSE2: {out:?} {input:?}");
            }
        }
    }
}
