use super::ketama::point_input;
use super::*;
use crate::fleet::{BackendId, BatchError, UnknownBackend};

/// Outputs of twemproxy's own C hash functions (src/hashkit, compiled with
/// gcc -O2 on x86-64; every key also hashed at byte offsets 1..3 with the same
/// result), in the order of [`KeyHash::ALL`].
#[rustfmt::skip]
const HASH_VECTORS: &[(&[u8], [u32; 12])] = &[
    (b"", [0x00000000, 0xd98c1dd4, 0x00000000, 0x00000000, 0x00000000, 0x84222325, 0x84222325, 0x811c9dc5, 0x811c9dc5, 0x00000000, 0x00000000, 0xdeadbefc]),
    (b"\x61", [0xca2e9442, 0xb975c10c, 0x00007c87, 0x000068b7, 0xe8b7be43, 0x8601b7be, 0x8601ec8c, 0x050c5d7e, 0xe40c292c, 0x93642e87, 0x4b41757c, 0xe0a38690]),
    (b"\x61\x62", [0x45e61e58, 0x43f47e18, 0x007c74ff, 0x00001e83, 0x9e83486d, 0xb4eb37b8, 0xb545986a, 0x70772d38, 0x4d2505ca, 0x5b8c0ec3, 0xe3b54dfb, 0xc1b5695b]),
    (b"\x61\x62\x63", [0xed131f5b, 0x98500190, 0x7c749dd6, 0x00003524, 0x352441c2, 0x6bafadcb, 0x0541574b, 0x439c2f4b, 0x1a47e90b, 0xe5186b3a, 0x7b0cc428, 0x8f415600]),
    (b"\x61\x62\x63\x64", [0xcd8b6206, 0x4c71fce2, 0x749da836, 0x00006d82, 0xed82cd11, 0xfb844f95, 0xee0724dd, 0xb9de7375, 0xce3479bd, 0x3ab452d8, 0xef6a86af, 0xd512151a]),
    (b"\x61\x62\x63\x64\x65", [0xb98559fc, 0xd9b456ab, 0x9da83ee1, 0x00000587, 0x8587d865, 0x61d33a4a, 0x762364a8, 0x0e2fc14a, 0x749bcf08, 0x84786722, 0x9a263eda, 0x5cff335b]),
    (b"\x66\x6f\x6f\x3a\x62\x61\x72\x3a\x62\x61\x7a", [0x7358e4e9, 0x09a4f25b, 0x047d73e7, 0x000020bd, 0x20bd4479, 0x435ef423, 0xfa2713e7, 0x578d7e03, 0xe08b1ac7, 0x70b9f58a, 0xac67de49, 0xe2d820d8]),
    (b"\x68\x65\x6c\x6c\x6f\x20\x77\x6f\x72\x6c\x64\x21", [0x9bd919d3, 0x8ef93ffc, 0x063b577b, 0x000003b4, 0x03b4c26d, 0xb97b86bc, 0xcd5a2672, 0x8a01b99c, 0xb034fff2, 0x13724f63, 0x7f8cfcad, 0x1bc66602]),
    (b"\x30\x31\x32\x33\x34\x35\x36\x37\x38\x39\x61\x62\x63", [0xcae77770, 0x71d9312d, 0x66f21798, 0x00004e68, 0xce68ad26, 0x0d0f5624, 0x0bd2b7f6, 0x54a63804, 0x8136b5b6, 0x9aefedfa, 0xc23faf3e, 0x37f93ead]),
    (b"\x63\x75\x73\x74\x6f\x6d\x65\x72\x2d\x30\x30\x31\x32\x33\x34\x35", [0x0d610985, 0x67d56dc6, 0x27e3f9bb, 0x00004e0a, 0xce0a82d3, 0x238626a3, 0xd4f2451f, 0x63c354a3, 0xfe24361f, 0x050ddbd5, 0x7189ec04, 0x058d3a03]),
    (b"\xc3\xa9\x74\xc3\xa9\x00", [0x8859c1c1, 0x70bea6bb, 0x26a7a20d, 0x000053f8, 0x53f8282c, 0xa0ae5115, 0x678ba7d5, 0xd82521b5, 0xdfa60435, 0x4050f533, 0x6f8f6f07, 0xc004c200]),
    (b"\xff", [0xae65a494, 0xd44f5900, 0x00001ef0, 0x00007f00, 0xff000000, 0x79fe4820, 0x79fe466e, 0xfaf3a2e0, 0xf9f3a14e, 0x02a6dba8, 0xdb530a9c, 0xe1964da8]),
    (b"\x80\x81\x82", [0xe8cce13b, 0x0a7685b3, 0x919aa239, 0x00003f5a, 0x3f5a8994, 0x94a33c86, 0x8a50dfa8, 0xcfab51a6, 0x0ef7fca8, 0x6bc37572, 0x5822874f, 0x3015dd51]),
    (b"\xce\xba\xce\xbb\xce\xb5\xce\xb9\xce\xb4\xce\xaf\x2d\x31\x32", [0x70266073, 0x8a7fb986, 0x3cc8e355, 0x000064c4, 0xe4c49fff, 0xcf81bcb1, 0x4acd179d, 0x24b5c491, 0x9afc2b3d, 0x1f0f9d45, 0xeab11848, 0xb961d220]),
    (b"\xfe\xff\x00\x7f\x80", [0xe64a96dc, 0xc3bc254b, 0xfb7d32b2, 0x00002a3c, 0xaa3cf9c9, 0xdfbc3fa9, 0x2feb2b19, 0x05d5a5a9, 0x5262f199, 0x99475eb9, 0x0a01b64a, 0x5dea6e6b]),
    (b"\x54\x68\x65\x20\x71\x75\x69\x63\x6b\x20\x62\x72\x6f\x77\x6e\x20\x66\x6f\x78\x20\x6a\x75\x6d\x70\x73\x20\x6f\x76\x65\x72\x20\x74\x68\x65\x20\x6c\x61\x7a\x79\x20\x64\x6f\x67\x20\xe2\x9c\x93", [0x513477fe, 0xdb55e9e8, 0x90ce0758, 0x00003fc5, 0xbfc505da, 0x669cc9ab, 0x5fb94f57, 0xc13066cb, 0xb8237837, 0x9e0c23d2, 0x6db6e331, 0x54af50d5]),
];

#[test]
fn hashes_match_twemproxy_c() {
    for (key, expect) in HASH_VECTORS {
        for (h, &e) in KeyHash::ALL.iter().zip(expect) {
            assert_eq!(h.hash(key), e, "{h} of {key:x?}");
        }
    }
}

/// twemproxy's points per server (its `float` expression, compiled with gcc
/// -O2 on x86-64) for these weights.
#[rustfmt::skip]
const POINT_VECTORS: &[(&[u32], &[u32])] = &[
    (&[1, 1, 1, 1, 1], &[160, 160, 160, 160, 160]),
    (&[1, 1, 2, 1, 3], &[100, 100, 200, 100, 300]),
    (&[1, 1, 2, 1, 3, 1], &[104, 104, 212, 104, 320, 104]),
    (&[3, 7, 11], &[68, 160, 248]),
    (&[1, 2, 3, 4, 5, 6, 7], &[40, 80, 120, 160, 200, 240, 280]),
    (&[100, 1], &[316, 0]),
    (&[1, 1000], &[0, 316]),
    (&[5, 5, 5], &[160, 160, 160]),
    (&[1, 1, 1], &[160, 160, 160]),
    (&[7, 7, 7, 7, 7, 7, 7], &[160, 160, 160, 160, 160, 160, 160]),
];

#[test]
fn points_per_server_match_twemproxy_c() {
    for (weights, expect) in POINT_VECTORS {
        let total: u32 = weights.iter().sum();
        let n = weights.len() as u32;
        let got: heapless::Vec<u32, 8> = weights
            .iter()
            .map(|&w| ketama_points(w, total, n))
            .collect();
        assert_eq!(got.as_slice(), *expect, "{weights:?}");
    }
}

/// The four little-endian words of MD5("{identity}-0"), from twemproxy's
/// md5_signature.
const MD5_POINTS: &[(&[u8], [u32; 4])] = &[
    (
        b"127.0.0.1:22122-0",
        [0x5ed83cd8, 0x029a9152, 0xaf45e36b, 0x720a74b0],
    ),
    (
        b"cache-a-0",
        [0x02f1ae2a, 0x20db8069, 0x5341bc30, 0xc7da8fe7],
    ),
    (
        b"10.0.0.1-0",
        [0x2194783c, 0x36d6a85b, 0xf1edf592, 0x40a9b8cf],
    ),
];

#[test]
fn first_digest_points() {
    for (identity, words) in MD5_POINTS {
        let mut pool: Ketama<2, 512> = Ketama::new(KeyHash::Md5);
        pool.add(&identity[..identity.len() - 2], 1).unwrap();
        for w in words {
            assert!(pool.points().iter().any(|p| p.value == *w), "{identity:?}");
        }
        assert_eq!(pool.points().len(), 160);
    }
}

#[test]
fn server_lines_split_as_twemproxy() {
    let s = ServerLine::parse(b"127.0.0.1:11211:1").unwrap();
    assert_eq!(
        (s.identity(), s.label(), s.weight),
        (&b"127.0.0.1"[..], &b"127.0.0.1:11211"[..], 1)
    );
    let s = ServerLine::parse(b"127.0.0.1:022122:3").unwrap();
    assert_eq!((s.identity(), s.port), (&b"127.0.0.1:022122"[..], 22122));
    let s = ServerLine::parse(b"10.0.0.2:11211:2 cache-b").unwrap();
    assert_eq!(
        (s.identity(), s.label()),
        (&b"cache-b"[..], &b"cache-b"[..])
    );
    let s = ServerLine::parse(b"::1:6379:1").unwrap();
    assert_eq!((s.host, s.identity()), (&b"::1"[..], &b"::1:6379"[..]));
    let s = ServerLine::parse(b"/tmp/mc.sock:2").unwrap();
    assert_eq!(
        (s.identity(), s.label(), s.port),
        (&b"/tmp/mc.sock:"[..], &b"/tmp/mc.sock"[..], 0)
    );
    for (bad, e) in [
        (&b"host:1"[..], ServerLineError::Format),
        (b"host", ServerLineError::Format),
        (b"host:11211:0", ServerLineError::ZeroWeight),
        (b"host:11211:x", ServerLineError::BadWeight),
        (b"host:11211:", ServerLineError::BadWeight),
        (b"host:0:1", ServerLineError::BadPort),
        (b"host:65536:1", ServerLineError::BadPort),
        (b"host:11211:1 ", ServerLineError::EmptyName),
        (b"host:11211:1 a b", ServerLineError::BadWeight),
        (
            b"host:11211:99999999999999999999",
            ServerLineError::BadWeight,
        ),
    ] {
        assert_eq!(ServerLine::parse(bad), Err(e), "{bad:?}");
    }
}

#[test]
fn hash_tags() {
    assert_eq!(hash_tag(b"user:{42}:name", *b"{}"), b"42");
    assert_eq!(hash_tag(b"user:{}:name", *b"{}"), b"user:{}:name");
    assert_eq!(hash_tag(b"user:{42", *b"{}"), b"user:{42");
    assert_eq!(hash_tag(b"a}{b}", *b"{}"), b"b");
    assert_eq!(hash_tag(b"x:ab:y", *b"::"), b"ab");
    let mut pool: Ketama<4, 640> = Ketama::new(KeyHash::Murmur);
    for n in [&b"a"[..], b"b", b"c"] {
        pool.add(n, 1).unwrap();
    }
    pool.set_hash_tag(Some(*b"{}"));
    for k in 0..200u32 {
        let mut key = [0u8; 16];
        let n = point_input(&mut [0; MAX_POINT_INPUT], b"", k);
        key[..4].copy_from_slice(b"{t}-");
        key[4..4 + n].fill(b'z');
        assert_eq!(pool.server_for(&key[..4 + n]), pool.server_for(b"t"));
    }
}

#[test]
fn dispatch_and_edges() {
    let mut pool: Ketama<3, 480, 8> = Ketama::new(KeyHash::Fnv1a64);
    assert_eq!(pool.server_for(b"k"), None);
    assert_eq!(pool.dispatch(5), None);
    pool.add(b"one", 1).unwrap();
    assert_eq!(pool.server_for(b"k"), Some(0));
    pool.add(b"two", 3).unwrap();
    assert_eq!(pool.points().len(), 80 + 240);
    assert!(pool.points().windows(2).all(|w| w[0] <= w[1]));
    let first = pool.points()[0];
    let last = pool.points()[pool.points().len() - 1];
    assert_eq!(pool.dispatch(first.value), Some(usize::from(first.server)));
    assert_eq!(pool.dispatch(0), Some(usize::from(first.server)));
    assert_eq!(pool.dispatch(last.value), Some(usize::from(last.server)));
    if last.value < u32::MAX {
        assert_eq!(
            pool.dispatch(last.value + 1),
            Some(usize::from(first.server))
        );
    }
    // The empty key hashes to 0.
    assert_eq!(pool.server_for(b""), pool.dispatch(0));
    assert_eq!(pool.add(b"two", 1), Err(KetamaError::DuplicateName));
    assert_eq!(pool.add(b"", 1), Err(KetamaError::BadName));
    assert_eq!(pool.add(b"123456789", 1), Err(KetamaError::BadName));
    assert_eq!(pool.add(b"x", 0), Err(KetamaError::ZeroWeight));
    assert_eq!(pool.add(b"x", u32::MAX), Err(KetamaError::WeightOverflow));
    // 3 servers of weight 1, 3, 1 need 96 + 288 + 96 = 480 points: fits.
    pool.add(b"three", 1).unwrap();
    assert_eq!(pool.add(b"four", 1), Err(KetamaError::Full));
    pool.remove(0).unwrap();
    assert_eq!(pool.name(0), Some(&b"two"[..]));
    assert_eq!(
        pool.remove(2),
        Err(KetamaError::Unknown(UnknownBackend(BackendId(2))))
    );
    let mut small: Ketama<4, 300> = Ketama::new(KeyHash::Md5);
    small.add(b"a", 1).unwrap();
    assert_eq!(small.add(b"b", 1), Err(KetamaError::NoRoom));
    assert_eq!(small.len(), 1);
    assert_eq!(small.points().len(), 160);
}

#[test]
fn adding_a_server_moves_keys_only_to_it() {
    let mut pool: Ketama<8, 1280> = Ketama::new(KeyHash::Md5);
    for n in [&b"a:1"[..], b"b:1", b"c:1", b"d:1", b"e:1"] {
        pool.add(n, 1).unwrap();
    }
    let before: heapless::Vec<usize, 1000> = (0..1000u32)
        .map(|k| pool.server_for(&k.to_le_bytes()).unwrap())
        .collect();
    pool.add(b"f:1", 1).unwrap();
    for (k, &b) in (0..1000u32).zip(&before) {
        let a = pool.server_for(&k.to_le_bytes()).unwrap();
        assert!(a == b || a == 5);
    }
}

#[test]
fn add_many_equals_one_by_one() {
    let names: Vec<Vec<u8>> = (0..40u32)
        .map(|i| format!("10.0.{}.{}:11211", i / 7, i).into_bytes())
        .collect();
    let servers: Vec<(&[u8], u32)> = names
        .iter()
        .enumerate()
        .map(|(i, n)| (n.as_slice(), (i % 3 + 1) as u32))
        .collect();
    let mut one: Box<Ketama<64, 10_240>> = Box::new(Ketama::new(KeyHash::Md5));
    for &(n, w) in &servers {
        one.add(n, w).unwrap();
    }
    // All at once, and in two batches on top of a non-empty pool.
    let mut all: Box<Ketama<64, 10_240>> = Box::new(Ketama::new(KeyHash::Md5));
    all.add_many(&servers).unwrap();
    let mut two: Box<Ketama<64, 10_240>> = Box::new(Ketama::new(KeyHash::Md5));
    two.add(servers[0].0, servers[0].1).unwrap();
    two.add_many(&servers[1..25]).unwrap();
    two.add_many(&servers[25..]).unwrap();
    for pool in [&all, &two] {
        assert_eq!(pool.points(), one.points());
        assert_eq!(pool.len(), one.len());
        for i in 0..servers.len() {
            assert_eq!(pool.name(i), one.name(i));
            assert_eq!(pool.weight(i), one.weight(i));
        }
    }
    assert_eq!(all.add_many(&[]), Ok(()));
    assert_eq!(all.points(), one.points());
}

#[test]
fn add_many_errors_name_the_server_and_change_nothing() {
    let mut pool: Ketama<4, 640, 8> = Ketama::new(KeyHash::Fnv1a64);
    pool.add(b"a", 1).unwrap();
    let before = pool.points().to_vec();
    type Batch<'a> = &'a [(&'a [u8], u32)];
    let cases: [(Batch<'_>, (usize, KetamaError)); 7] = [
        (&[(b"b", 1), (b"c", 0)], (1, KetamaError::ZeroWeight)),
        (&[(b"b", 1), (b"a", 1)], (1, KetamaError::DuplicateName)),
        (&[(b"b", 1), (b"b", 1)], (1, KetamaError::DuplicateName)),
        (&[(b"", 1)], (0, KetamaError::BadName)),
        (&[(b"b", 1), (b"123456789", 1)], (1, KetamaError::BadName)),
        (
            &[(b"b", 1), (b"c", 1), (b"d", 1), (b"e", 1)],
            (3, KetamaError::Full),
        ),
        (&[(b"b", u32::MAX)], (0, KetamaError::WeightOverflow)),
    ];
    for (batch, err) in cases {
        let (index, error) = err;
        assert_eq!(
            pool.add_many(batch),
            Err(BatchError { index, error }),
            "{batch:?}"
        );
        assert_eq!(pool.len(), 1);
        assert_eq!(pool.points(), &before[..]);
    }
    let mut small: Ketama<4, 300> = Ketama::new(KeyHash::Md5);
    assert_eq!(
        small.add_many(&[(b"a", 1), (b"b", 1)]),
        Err(BatchError {
            index: 1,
            error: KetamaError::NoRoom
        })
    );
    assert!(small.is_empty() && small.points().is_empty());
}

#[test]
fn names_round_trip() {
    for h in KeyHash::ALL {
        assert_eq!(h.name().parse::<KeyHash>(), Ok(h));
    }
    assert_eq!("FNV1A_64".parse::<KeyHash>(), Err(UnknownKeyHash));
    assert_eq!(KeyHash::default(), KeyHash::Fnv1a64);
}

#[test]
fn point_input_formats_and_cuts() {
    let mut buf = [0u8; MAX_POINT_INPUT];
    let n = point_input(&mut buf, b"10.0.0.1:11212", 39);
    assert_eq!(&buf[..n], b"10.0.0.1:11212-39");
    let n = point_input(&mut buf, b"a", 0);
    assert_eq!(&buf[..n], b"a-0");
    let n = point_input(&mut buf, b"b", u32::MAX);
    assert_eq!(&buf[..n], b"b-4294967295");
    let long = [b'x'; 300];
    assert_eq!(point_input(&mut buf, &long, 7), MAX_POINT_INPUT);
}
