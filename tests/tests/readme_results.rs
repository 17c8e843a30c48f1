//! The README's scenario figures (typed by hand in "Results: scenarios A–D")
//! against `docs/results/results.json`, within the precision each is printed
//! with (issue 11). `host_sim` checks that the JSON matches a fresh run; this
//! checks that the prose and tables still say what the JSON says.

use serde_json::Value;

/// A number as printed: its value and how many decimals it was printed with.
#[derive(Debug, Clone, Copy)]
struct Printed {
    value: f64,
    decimals: i32,
}

/// Every number in `text`, in order: digit runs with `,` thousands separators
/// and an optional decimal part (`15,202`, `49.5`, `0.788`).
fn numbers(text: &str) -> Vec<Printed> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if !b[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        let mut digits = String::new();
        let mut decimals = 0;
        let mut seen_dot = false;
        while i < b.len() {
            let c = b[i];
            let next_digit = b.get(i + 1).is_some_and(u8::is_ascii_digit);
            if c.is_ascii_digit() {
                digits.push(c as char);
                if seen_dot {
                    decimals += 1;
                }
            } else if c == b',' && !seen_dot && next_digit {
                // thousands separator
            } else if c == b'.' && !seen_dot && next_digit {
                seen_dot = true;
                digits.push('.');
            } else {
                break;
            }
            i += 1;
        }
        out.push(Printed {
            value: digits.parse().expect("digits"),
            decimals,
        });
    }
    out
}

/// The README section between `## Results: scenarios A–D` and the next `## `.
fn results_section() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md");
    let readme = std::fs::read_to_string(path).expect("README.md");
    let start = readme
        .find("## Results: scenarios A–D")
        .expect("README has the results section");
    let rest = &readme[start + 3..];
    let end = rest.find("\n## ").unwrap_or(rest.len());
    rest[..end].to_owned()
}

fn results_json() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/results/results.json");
    serde_json::from_str(&std::fs::read_to_string(path).expect("results.json")).expect("JSON")
}

/// The first `n` numbers after `anchor` (which must occur once; line breaks
/// in the README count as spaces).
fn after(section: &str, anchor: &str, n: usize) -> Vec<Printed> {
    let prose = section.split_whitespace().collect::<Vec<_>>().join(" ");
    assert_eq!(prose.matches(anchor).count(), 1, "anchor {anchor:?}");
    let at = prose.find(anchor).unwrap() + anchor.len();
    let found = numbers(&prose[at..]);
    assert!(found.len() >= n, "fewer than {n} numbers after {anchor:?}");
    found[..n].to_vec()
}

/// The numbers of the table row that starts with `| {label} |`, one per cell.
fn row(section: &str, label: &str) -> Vec<Printed> {
    let prefix = format!("| {label} |");
    let lines: Vec<&str> = section.lines().filter(|l| l.starts_with(&prefix)).collect();
    assert_eq!(lines.len(), 1, "row {label:?}");
    lines[0][prefix.len()..]
        .split('|')
        .filter(|c| !c.trim().is_empty())
        .map(|cell| {
            *numbers(cell)
                .first()
                .unwrap_or_else(|| panic!("no number in cell {cell:?} of row {label:?}"))
        })
        .collect()
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

/// `printed` is `actual` rounded to the printed decimals (half a unit of the
/// last printed digit, plus float slack).
#[track_caller]
fn check(what: &str, printed: Printed, actual: f64) {
    let half_unit = 0.5 * 10f64.powi(-printed.decimals);
    assert!(
        (printed.value - actual).abs() <= half_unit + 1e-9,
        "README says {what} = {} but results.json has {actual}",
        printed.value
    );
}

fn check_all(what: &str, printed: &[Printed], actual: &[f64]) {
    assert_eq!(printed.len(), actual.len(), "{what}: cells");
    for (i, (&p, &a)) in printed.iter().zip(actual).enumerate() {
        check(&format!("{what}[{i}]"), p, a);
    }
}

fn floats(v: &Value, scale: f64) -> Vec<f64> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|x| f(x) * scale)
        .collect()
}

#[test]
fn readme_scenario_figures_match_results_json() {
    let s = results_section();
    let j = results_json();

    let n = after(&s, "It simulates", 1);
    check(
        "requests simulated",
        n[0],
        f(&j["meta"]["requests_simulated"]),
    );

    // A: prose, then the capacity sweep table.
    let a = &j["a"];
    let ring = &a["strategies"]["ring"];
    let rr = &a["strategies"]["round_robin"];
    let p = after(&s, "the ring's hit rate is", 5);
    check("A ring hit rate %", p[0], 100.0 * f(&ring["hit_rate"]));
    check("A round robin hit rate %", p[1], 100.0 * f(&rr["hit_rate"]));
    check(
        "A ring / round robin",
        p[2],
        f(&a["hit_rate_ratio_ring_over_round_robin"]),
    );
    check("A ring datastore reads", p[3], f(&ring["datastore_reads"]));
    check(
        "A round robin datastore reads",
        p[4],
        f(&rr["datastore_reads"]),
    );
    let sweep = &a["sweep"];
    let caps = floats(&sweep["capacities"], 1.0);
    let ring_sweep = floats(&sweep["hit_rate"]["ring"], 100.0);
    let p = after(&s, "The capacity sweep shows the ring reaching", 2);
    let at90 = f(&sweep["ring_capacity_for_90"]);
    check("A capacity for 90%", p[1], at90);
    let i90 = caps
        .iter()
        .position(|&c| c == at90)
        .expect("capacity in sweep");
    check("A ring hit rate at that capacity", p[0], ring_sweep[i90]);
    check_all(
        "A sweep capacities",
        &row(&s, "cache entries per server"),
        &caps,
    );
    check_all("A sweep ring", &row(&s, "ring hit rate"), &ring_sweep);
    check_all(
        "A sweep round robin",
        &row(&s, "round robin hit rate"),
        &floats(&sweep["hit_rate"]["round_robin"], 100.0),
    );

    // B: keys moved, hit rate before, lowest after, extra reads, recovery.
    for name in ["ring", "modulo"] {
        let b = &j["b"]["strategies"][name];
        let cells = row(&s, name);
        assert_eq!(cells.len(), 5, "B {name}: cells");
        check(
            &format!("B {name} keys moved %"),
            cells[0],
            100.0 * f(&b["keys_moved_fraction"]),
        );
        check(
            &format!("B {name} hit rate before %"),
            cells[1],
            100.0 * f(&b["pre_change_hit_rate"]),
        );
        check(
            &format!("B {name} lowest after %"),
            cells[2],
            100.0 * f(&b["min_hit_rate_after_change"]),
        );
        check(
            &format!("B {name} extra datastore reads"),
            cells[3],
            f(&b["extra_datastore_reads"]),
        );
        check(
            &format!("B {name} recovery s"),
            cells[4],
            f(&b["recovery_s"]),
        );
    }

    // C: one column per vnodes count.
    let rows = j["c"]["rows"].as_array().expect("C rows");
    let col = |k: &str| rows.iter().map(|r| f(&r[k])).collect::<Vec<_>>();
    check_all("C vnodes", &row(&s, "vnodes"), &col("vnodes"));
    check_all("C cov", &row(&s, "coefficient of variation"), &col("cov"));
    check_all(
        "C max/min median",
        &row(&s, "max/min keys (median)"),
        &col("max_min_median"),
    );

    // D: busiest and quietest server under Zipf, max/min, and uniform's.
    let d = &j["d"]["distributions"];
    let zipf = floats(&d["zipf"]["requests_per_server"], 1.0);
    let p = after(&s, "the busiest server takes", 4);
    check(
        "D busiest",
        p[0],
        zipf.iter().copied().fold(f64::MIN, f64::max),
    );
    check(
        "D quietest",
        p[1],
        zipf.iter().copied().fold(f64::MAX, f64::min),
    );
    check("D zipf max/min", p[2], f(&d["zipf"]["max_min_load"]));
    check("D uniform max/min", p[3], f(&d["uniform"]["max_min_load"]));
}

#[test]
fn number_parser_reads_printed_figures() {
    let n = numbers("**49.5%** against 15,202 (5.0×), s = 1.5, 1,521; 0.788 |");
    let got: Vec<(f64, i32)> = n.iter().map(|p| (p.value, p.decimals)).collect();
    assert_eq!(
        got,
        [
            (49.5, 1),
            (15202.0, 0),
            (5.0, 1),
            (1.5, 1),
            (1521.0, 0),
            (0.788, 3)
        ]
    );
}
