//! MD5 of four one-block messages at once, for the continuum build.
//!
//! A ketama point input (`"{name}-{i}"`) almost always fits one MD5 block (55
//! bytes or less). One MD5 block is 64 dependent steps, so a single digest
//! waits on its own latency chain; four independent digests interleaved lane
//! by lane (`[u32; 4]` per state word) let the CPU overlap the chains (and
//! the compiler use 128-bit vector lanes where it can). Same function as the
//! `md-5` crate's, bit for bit (the unit tests compare the two); longer inputs
//! keep using `md-5`.

/// Lanes per call.
pub(super) const LANES: usize = 4;

/// The longest message one padded block holds: 64 bytes less the `0x80`
/// terminator and the 8-byte bit length.
pub(super) const MAX_ONE_BLOCK: usize = 55;

type Lanes = [u32; LANES];

const INIT: [u32; 4] = [0x6745_2301, 0xefcd_ab89, 0x98ba_dcfe, 0x1032_5476];

/// `floor(abs(sin(i + 1)) * 2^32)`, RFC 1321.
const K: [u32; 64] = [
    0xd76a_a478,
    0xe8c7_b756,
    0x2420_70db,
    0xc1bd_ceee,
    0xf57c_0faf,
    0x4787_c62a,
    0xa830_4613,
    0xfd46_9501,
    0x6980_98d8,
    0x8b44_f7af,
    0xffff_5bb1,
    0x895c_d7be,
    0x6b90_1122,
    0xfd98_7193,
    0xa679_438e,
    0x49b4_0821,
    0xf61e_2562,
    0xc040_b340,
    0x265e_5a51,
    0xe9b6_c7aa,
    0xd62f_105d,
    0x0244_1453,
    0xd8a1_e681,
    0xe7d3_fbc8,
    0x21e1_cde6,
    0xc337_07d6,
    0xf4d5_0d87,
    0x455a_14ed,
    0xa9e3_e905,
    0xfcef_a3f8,
    0x676f_02d9,
    0x8d2a_4c8a,
    0xfffa_3942,
    0x8771_f681,
    0x6d9d_6122,
    0xfde5_380c,
    0xa4be_ea44,
    0x4bde_cfa9,
    0xf6bb_4b60,
    0xbebf_bc70,
    0x289b_7ec6,
    0xeaa1_27fa,
    0xd4ef_3085,
    0x0488_1d05,
    0xd9d4_d039,
    0xe6db_99e5,
    0x1fa2_7cf8,
    0xc4ac_5665,
    0xf429_2244,
    0x432a_ff97,
    0xab94_23a7,
    0xfc93_a039,
    0x655b_59c3,
    0x8f0c_cc92,
    0xffef_f47d,
    0x8584_5dd1,
    0x6fa8_7e4f,
    0xfe2c_e6e0,
    0xa301_4314,
    0x4e08_11a1,
    0xf753_7e82,
    0xbd3a_f235,
    0x2ad7_d2bb,
    0xeb86_d391,
];

/// Four padded blocks, word-major: `words[w][lane]` is little-endian word `w`
/// of lane `lane`'s block.
#[derive(Debug, Clone)]
pub(super) struct Blocks {
    words: [Lanes; 16],
}

impl Blocks {
    pub(super) const fn new() -> Self {
        Self {
            words: [[0; LANES]; 16],
        }
    }

    /// Loads `msg` (at most [`MAX_ONE_BLOCK`] bytes; longer is cut) padded as
    /// MD5 pads it into `lane`.
    pub(super) fn set(&mut self, lane: usize, msg: &[u8]) {
        let len = msg.len().min(MAX_ONE_BLOCK);
        let mut block = [0u8; 64];
        if let Some(dst) = block.get_mut(..len) {
            dst.copy_from_slice(msg.get(..len).unwrap_or(&[]));
        }
        if let Some(b) = block.get_mut(len) {
            *b = 0x80;
        }
        let bits = (len as u64 * 8).to_le_bytes();
        if let Some(dst) = block.get_mut(56..) {
            dst.copy_from_slice(&bits);
        }
        for (w, chunk) in self.words.iter_mut().zip(block.chunks_exact(4)) {
            if let Some(x) = w.get_mut(lane) {
                *x = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
            }
        }
    }

    /// The four digests' state words: `out[lane][k]` is the `k`-th
    /// little-endian word of lane `lane`'s 16-byte digest.
    pub(super) fn digests(&self) -> [[u32; 4]; LANES] {
        let m = &self.words;
        let [mut a, mut b, mut c, mut d] = INIT.map(|x| [x; LANES]);
        a = step(f(b, c, d), a, b, m[0], K[0], 7);
        d = step(f(a, b, c), d, a, m[1], K[1], 12);
        c = step(f(d, a, b), c, d, m[2], K[2], 17);
        b = step(f(c, d, a), b, c, m[3], K[3], 22);
        a = step(f(b, c, d), a, b, m[4], K[4], 7);
        d = step(f(a, b, c), d, a, m[5], K[5], 12);
        c = step(f(d, a, b), c, d, m[6], K[6], 17);
        b = step(f(c, d, a), b, c, m[7], K[7], 22);
        a = step(f(b, c, d), a, b, m[8], K[8], 7);
        d = step(f(a, b, c), d, a, m[9], K[9], 12);
        c = step(f(d, a, b), c, d, m[10], K[10], 17);
        b = step(f(c, d, a), b, c, m[11], K[11], 22);
        a = step(f(b, c, d), a, b, m[12], K[12], 7);
        d = step(f(a, b, c), d, a, m[13], K[13], 12);
        c = step(f(d, a, b), c, d, m[14], K[14], 17);
        b = step(f(c, d, a), b, c, m[15], K[15], 22);
        a = step(g(b, c, d), a, b, m[1], K[16], 5);
        d = step(g(a, b, c), d, a, m[6], K[17], 9);
        c = step(g(d, a, b), c, d, m[11], K[18], 14);
        b = step(g(c, d, a), b, c, m[0], K[19], 20);
        a = step(g(b, c, d), a, b, m[5], K[20], 5);
        d = step(g(a, b, c), d, a, m[10], K[21], 9);
        c = step(g(d, a, b), c, d, m[15], K[22], 14);
        b = step(g(c, d, a), b, c, m[4], K[23], 20);
        a = step(g(b, c, d), a, b, m[9], K[24], 5);
        d = step(g(a, b, c), d, a, m[14], K[25], 9);
        c = step(g(d, a, b), c, d, m[3], K[26], 14);
        b = step(g(c, d, a), b, c, m[8], K[27], 20);
        a = step(g(b, c, d), a, b, m[13], K[28], 5);
        d = step(g(a, b, c), d, a, m[2], K[29], 9);
        c = step(g(d, a, b), c, d, m[7], K[30], 14);
        b = step(g(c, d, a), b, c, m[12], K[31], 20);
        a = step(h(b, c, d), a, b, m[5], K[32], 4);
        d = step(h(a, b, c), d, a, m[8], K[33], 11);
        c = step(h(d, a, b), c, d, m[11], K[34], 16);
        b = step(h(c, d, a), b, c, m[14], K[35], 23);
        a = step(h(b, c, d), a, b, m[1], K[36], 4);
        d = step(h(a, b, c), d, a, m[4], K[37], 11);
        c = step(h(d, a, b), c, d, m[7], K[38], 16);
        b = step(h(c, d, a), b, c, m[10], K[39], 23);
        a = step(h(b, c, d), a, b, m[13], K[40], 4);
        d = step(h(a, b, c), d, a, m[0], K[41], 11);
        c = step(h(d, a, b), c, d, m[3], K[42], 16);
        b = step(h(c, d, a), b, c, m[6], K[43], 23);
        a = step(h(b, c, d), a, b, m[9], K[44], 4);
        d = step(h(a, b, c), d, a, m[12], K[45], 11);
        c = step(h(d, a, b), c, d, m[15], K[46], 16);
        b = step(h(c, d, a), b, c, m[2], K[47], 23);
        a = step(i(b, c, d), a, b, m[0], K[48], 6);
        d = step(i(a, b, c), d, a, m[7], K[49], 10);
        c = step(i(d, a, b), c, d, m[14], K[50], 15);
        b = step(i(c, d, a), b, c, m[5], K[51], 21);
        a = step(i(b, c, d), a, b, m[12], K[52], 6);
        d = step(i(a, b, c), d, a, m[3], K[53], 10);
        c = step(i(d, a, b), c, d, m[10], K[54], 15);
        b = step(i(c, d, a), b, c, m[1], K[55], 21);
        a = step(i(b, c, d), a, b, m[8], K[56], 6);
        d = step(i(a, b, c), d, a, m[15], K[57], 10);
        c = step(i(d, a, b), c, d, m[6], K[58], 15);
        b = step(i(c, d, a), b, c, m[13], K[59], 21);
        a = step(i(b, c, d), a, b, m[4], K[60], 6);
        d = step(i(a, b, c), d, a, m[11], K[61], 10);
        c = step(i(d, a, b), c, d, m[2], K[62], 15);
        b = step(i(c, d, a), b, c, m[9], K[63], 21);
        let mut out = [[0u32; 4]; LANES];
        for (l, o) in out.iter_mut().enumerate() {
            *o = [
                INIT[0].wrapping_add(a[l]),
                INIT[1].wrapping_add(b[l]),
                INIT[2].wrapping_add(c[l]),
                INIT[3].wrapping_add(d[l]),
            ];
        }
        out
    }
}

/// One MD5 step on every lane: `x + rotl(f + w + m + k, s)`.
#[inline(always)]
fn step(f: Lanes, w: Lanes, x: Lanes, m: Lanes, k: u32, s: u32) -> Lanes {
    core::array::from_fn(|l| {
        f[l].wrapping_add(w[l])
            .wrapping_add(m[l])
            .wrapping_add(k)
            .rotate_left(s)
            .wrapping_add(x[l])
    })
}

#[inline(always)]
fn f(x: Lanes, y: Lanes, z: Lanes) -> Lanes {
    core::array::from_fn(|l| (x[l] & y[l]) | (!x[l] & z[l]))
}

#[inline(always)]
fn g(x: Lanes, y: Lanes, z: Lanes) -> Lanes {
    core::array::from_fn(|l| (x[l] & z[l]) | (y[l] & !z[l]))
}

#[inline(always)]
fn h(x: Lanes, y: Lanes, z: Lanes) -> Lanes {
    core::array::from_fn(|l| x[l] ^ y[l] ^ z[l])
}

#[inline(always)]
fn i(x: Lanes, y: Lanes, z: Lanes) -> Lanes {
    core::array::from_fn(|l| y[l] ^ (x[l] | !z[l]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compat::twemproxy::hash::md5_digest;

    fn words(d: [u8; 16]) -> [u32; 4] {
        core::array::from_fn(|k| {
            u32::from_le_bytes([d[4 * k], d[4 * k + 1], d[4 * k + 2], d[4 * k + 3]])
        })
    }

    #[test]
    fn equals_md5_for_every_one_block_length() {
        let mut msg = [0u8; MAX_ONE_BLOCK];
        for (i, b) in msg.iter_mut().enumerate() {
            *b = (i as u8).wrapping_mul(37).wrapping_add(11);
        }
        for len in 0..=MAX_ONE_BLOCK {
            let mut blocks = Blocks::new();
            for lane in 0..LANES {
                // Each lane a different message of the same length.
                let mut m = msg;
                if let Some(b) = m.first_mut() {
                    *b ^= lane as u8;
                }
                blocks.set(lane, &m[..len]);
            }
            let got = blocks.digests();
            for (lane, digest) in got.iter().enumerate() {
                let mut m = msg;
                m[0] ^= lane as u8;
                assert_eq!(
                    *digest,
                    words(md5_digest(&[&m[..len]])),
                    "len {len} lane {lane}"
                );
            }
        }
    }

    #[test]
    fn rfc_1321_vectors() {
        let mut blocks = Blocks::new();
        blocks.set(0, b"");
        blocks.set(1, b"abc");
        blocks.set(2, b"message digest");
        blocks.set(3, b"abcdefghijklmnopqrstuvwxyz");
        let d = blocks.digests();
        let hex = |w: [u32; 4]| {
            w.iter()
                .flat_map(|x| x.to_le_bytes())
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        };
        assert_eq!(hex(d[0]), "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(hex(d[1]), "900150983cd24fb0d6963f7d28e17f72");
        assert_eq!(hex(d[2]), "f96b697d7cb7938d525a2f31aaf161d0");
        assert_eq!(hex(d[3]), "c3fcd3d76192e4007dfb496cca67e13b");
    }
}
