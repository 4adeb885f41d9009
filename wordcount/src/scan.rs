//! Word boundaries 64 bytes at a time: each block of input becomes bit masks (one bit per byte),
//! and words are read off the masks with bit tricks instead of branching on every byte.
//!
//! x86_64 builds the masks with SSE2 (part of the x86_64 baseline, so no runtime detection);
//! other targets build the same masks byte by byte.

/// Per-block masks: bit `i` describes byte `i` of the block.
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
pub struct Masks {
    /// 0x09-0x0D and 0x20.
    pub space: u64,
    /// ASCII letters.
    pub letter: u64,
    /// ASCII digits.
    pub digit: u64,
    /// `_`.
    pub underscore: u64,
    /// `:` `.` `'`: join two letters (UAX #29 MidLetter, MidNumLet, Single_Quote).
    pub join_letters: u64,
    /// `,` `;` `.` `'`: join two digits (MidNum, MidNumLet, Single_Quote).
    pub join_digits: u64,
}

/// Bytes appended to a short final block; a space ends words and is no word byte in any mode.
const PAD: u8 = b' ';

#[inline(always)]
fn block_at(text: &[u8], base: usize, tmp: &mut [u8; 64]) -> *const u8 {
    if base + 64 <= text.len() {
        text[base..].as_ptr()
    } else {
        let rest = &text[base..];
        tmp.fill(PAD);
        tmp[..rest.len()].copy_from_slice(rest);
        tmp.as_ptr()
    }
}

#[cfg(target_arch = "x86_64")]
mod imp {
    use super::Masks;
    use std::arch::x86_64::*;

    #[inline(always)]
    unsafe fn eq(v: __m128i, b: u8) -> __m128i {
        unsafe { _mm_cmpeq_epi8(v, _mm_set1_epi8(b as i8)) }
    }

    /// Bytes `b` with `lo <= b <= lo + span` (unsigned).
    #[inline(always)]
    unsafe fn within(v: __m128i, lo: u8, span: u8) -> __m128i {
        unsafe {
            let x = _mm_sub_epi8(v, _mm_set1_epi8(lo as i8));
            _mm_cmpeq_epi8(_mm_min_epu8(x, _mm_set1_epi8(span as i8)), x)
        }
    }

    #[inline(always)]
    unsafe fn bits(m: [__m128i; 4]) -> u64 {
        unsafe {
            (_mm_movemask_epi8(m[0]) as u16 as u64)
                | (_mm_movemask_epi8(m[1]) as u16 as u64) << 16
                | (_mm_movemask_epi8(m[2]) as u16 as u64) << 32
                | (_mm_movemask_epi8(m[3]) as u16 as u64) << 48
        }
    }

    #[inline(always)]
    unsafe fn load(p: *const u8) -> [__m128i; 4] {
        unsafe { [0, 16, 32, 48].map(|o| _mm_loadu_si128(p.add(o) as *const __m128i)) }
    }

    /// # Safety
    /// `p` must point to 64 readable bytes.
    #[inline(always)]
    pub unsafe fn space(p: *const u8) -> u64 {
        unsafe {
            let v = load(p);
            bits(v.map(|v| _mm_or_si128(within(v, 9, 4), eq(v, b' '))))
        }
    }

    /// # Safety
    /// `p` must point to 64 readable bytes.
    #[inline(always)]
    pub unsafe fn words(p: *const u8) -> Masks {
        unsafe {
            let v = load(p);
            let dot_quote = v.map(|v| _mm_or_si128(eq(v, b'.'), eq(v, b'\'')));
            Masks {
                space: 0,
                letter: bits(v.map(|v| within(_mm_or_si128(v, _mm_set1_epi8(0x20)), b'a', 25))),
                digit: bits(v.map(|v| within(v, b'0', 9))),
                underscore: bits(v.map(|v| eq(v, b'_'))),
                join_letters: bits(dot_quote) | bits(v.map(|v| eq(v, b':'))),
                join_digits: bits(dot_quote)
                    | bits(v.map(|v| _mm_or_si128(eq(v, b','), eq(v, b';')))),
            }
        }
    }
}

#[cfg(not(target_arch = "x86_64"))]
mod imp {
    use super::Masks;

    fn mask(p: *const u8, pred: impl Fn(u8) -> bool) -> u64 {
        // SAFETY: callers guarantee 64 readable bytes.
        let block = unsafe { std::slice::from_raw_parts(p, 64) };
        block
            .iter()
            .enumerate()
            .fold(0, |m, (i, &b)| m | (pred(b) as u64) << i)
    }

    pub unsafe fn space(p: *const u8) -> u64 {
        mask(p, crate::split::is_space)
    }

    pub unsafe fn words(p: *const u8) -> Masks {
        Masks {
            space: 0,
            letter: mask(p, |b| b.is_ascii_alphabetic()),
            digit: mask(p, |b| b.is_ascii_digit()),
            underscore: mask(p, |b| b == b'_'),
            join_letters: mask(p, |b| matches!(b, b':' | b'.' | b'\'')),
            join_digits: mask(p, |b| matches!(b, b',' | b';' | b'.' | b'\'')),
        }
    }
}

/// Calls `f(start, end)` for every maximal run of set bits in the concatenated block masks.
#[inline(always)]
fn runs(n: usize, mut block_mask: impl FnMut(usize) -> u64, mut f: impl FnMut(usize, usize)) {
    let mut carry = 0u64;
    let mut start = 0;
    let mut base = 0;
    while base < n {
        let w = block_mask(base);
        let shifted = (w << 1) | carry;
        let starts = w & !shifted;
        let mut events = starts | (!w & shifted);
        carry = w >> 63;
        while events != 0 {
            let i = events.trailing_zeros() as usize;
            events &= events - 1;
            if starts >> i & 1 == 1 {
                start = base + i;
            } else {
                f(start, base + i);
            }
        }
        base += 64;
    }
    if carry != 0 {
        f(start, n);
    }
}

/// Calls `f` with every run of bytes between ASCII whitespace.
pub fn whitespace_words<'a>(text: &'a [u8], mut f: impl FnMut(&'a [u8])) {
    let mut tmp = [0u8; 64];
    runs(
        text.len(),
        // SAFETY: `block_at` returns 64 readable bytes.
        |base| !unsafe { imp::space(block_at(text, base, &mut tmp)) },
        |s, e| f(&text[s..e]),
    );
}

/// Calls `f` with every UAX #29 word of an ASCII piece, in the piece's own case (the same words
/// as [`crate::unicode::ascii_words`]).
pub fn ascii_words<'a>(text: &'a [u8], mut f: impl FnMut(&'a [u8])) {
    let mut tmp = [0u8; 64];
    let class_of_next = |at: usize| -> (u64, u64) {
        match text.get(at) {
            Some(b) => (b.is_ascii_alphabetic() as u64, b.is_ascii_digit() as u64),
            None => (0, 0),
        }
    };
    let (mut prev_letter, mut prev_digit) = (0u64, 0u64);
    runs(
        text.len(),
        |base| {
            // SAFETY: `block_at` returns 64 readable bytes.
            let m = unsafe { imp::words(block_at(text, base, &mut tmp)) };
            let (next_letter, next_digit) = class_of_next(base + 64);
            let before_l = (m.letter << 1) | prev_letter;
            let after_l = (m.letter >> 1) | next_letter << 63;
            let before_d = (m.digit << 1) | prev_digit;
            let after_d = (m.digit >> 1) | next_digit << 63;
            prev_letter = m.letter >> 63;
            prev_digit = m.digit >> 63;
            m.letter
                | m.digit
                | m.underscore
                | (m.join_letters & before_l & after_l)
                | (m.join_digits & before_d & after_d)
        },
        |s, e| {
            let w = &text[s..e];
            if w[0] != b'_' || w.iter().any(|&b| b != b'_') {
                f(w)
            }
        },
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    type Scanner = fn(&[u8], &mut dyn FnMut(&[u8]));

    fn collect(text: &[u8], g: Scanner) -> Vec<Vec<u8>> {
        let mut v = Vec::new();
        g(text, &mut |w| v.push(w.to_vec()));
        v
    }

    #[test]
    fn whitespace_runs_across_blocks() {
        let text: Vec<u8> = (0..300u32)
            .map(|i| {
                if i % 13 == 0 || i % 64 == 63 {
                    b' '
                } else {
                    b'x'
                }
            })
            .collect();
        let expected: Vec<Vec<u8>> = text
            .split(|&b| b == b' ')
            .filter(|w| !w.is_empty())
            .map(<[u8]>::to_vec)
            .collect();
        assert_eq!(collect(&text, |t, f| whitespace_words(t, f)), expected);
        assert_eq!(
            collect(b"", |t, f| whitespace_words(t, f)),
            Vec::<Vec<u8>>::new()
        );
        assert_eq!(
            collect(&[b'a'; 64], |t, f| whitespace_words(t, f)),
            vec![vec![b'a'; 64]]
        );
    }
}
