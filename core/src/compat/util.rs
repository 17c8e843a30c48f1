//! Helpers the compat modes share: one CRC-32 table and one decimal formatter
//! (both used to be written out in `nginx.rs` and `twemproxy.rs`).

/// The CRC-32 table (IEEE 802.3, reflected polynomial `0xEDB88320`, LSB
/// first): nginx's `ngx_crc32_table256`, zlib's and libmemcached's, and what
/// HAProxy's bitwise `hash_crc32` computes.
const CRC32_TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut bit = 0;
        while bit < 8 {
            c = if c & 1 != 0 {
                (c >> 1) ^ 0xEDB8_8320
            } else {
                c >> 1
            };
            bit += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
};

/// The CRC-32 register `crc` after feeding `bytes` (no initial or final
/// inversion: callers start from `u32::MAX` and invert at the end).
pub(crate) fn crc32_update(mut crc: u32, bytes: &[u8]) -> u32 {
    for &b in bytes {
        let i = ((crc ^ u32::from(b)) & 0xFF) as u8;
        crc = CRC32_TABLE[usize::from(i)] ^ (crc >> 8);
    }
    crc
}

/// `n` in decimal ASCII, written at the end of `buf`; returns the digits.
/// Ten bytes hold any `u32`.
pub(crate) fn decimal(mut n: u32, buf: &mut [u8; 10]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        if let Some(d) = buf.get_mut(i) {
            *d = b'0' + (n % 10) as u8;
        }
        n /= 10;
        if n == 0 || i == 0 {
            break;
        }
    }
    buf.get(i..).unwrap_or(&[])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_check_value() {
        assert_eq!(!crc32_update(u32::MAX, b"123456789"), 0xCBF4_3926);
        let split = crc32_update(crc32_update(u32::MAX, b"1234"), b"56789");
        assert_eq!(split, crc32_update(u32::MAX, b"123456789"));
    }

    #[test]
    fn decimal_digits() {
        let mut b = [0u8; 10];
        assert_eq!(decimal(0, &mut b), b"0");
        assert_eq!(decimal(7, &mut b), b"7");
        assert_eq!(decimal(20, &mut b), b"20");
        assert_eq!(decimal(u32::MAX, &mut b), b"4294967295");
    }
}
