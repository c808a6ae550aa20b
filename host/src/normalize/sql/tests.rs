//! Tests of SQL normalization: a table of cases, each also checked to be a fixed point, and
//! property tests on arbitrary and SQL-like input.

use super::*;
use proptest::prelude::*;

fn norm(input: &str) -> (String, Vec<&str>, bool) {
    let mut out = String::new();
    let mut params = Vec::new();
    let n = normalize_sql(input, &mut out, &mut params);
    let params = params.into_iter().map(|r| &input[r]).collect();
    (out, params, n.truncated)
}

#[test]
fn table() {
    let cases: &[(&str, &str, &[&str])] = &[
        (
            "SELECT * FROM users WHERE id = 42",
            "SELECT * FROM users WHERE id = ?",
            &["42"],
        ),
        ("WHERE name = 'O''Brien'", "WHERE name = ?", &["O''Brien"]),
        (
            r"WHERE a = 'it\'s' AND b = 'x'",
            "WHERE a = ? AND b = ?",
            &[r"it\'s", "x"],
        ),
        (
            "SELECT E'a\\nb', N'nom', n'x'",
            "SELECT ?, ?, ?",
            &["a\\nb", "nom", "x"],
        ),
        ("WHERE id IN (1, 2, 3)", "WHERE id IN (?)", &["1", "2", "3"]),
        ("WHERE id IN ( ?,\n ?,? )", "WHERE id IN (?)", &[]),
        (
            "INSERT INTO t VALUES (1, 'a'), (2, 'b')",
            "INSERT INTO t VALUES (?), (?)",
            &["1", "a", "2", "b"],
        ),
        (
            "WHERE a IN (1, x) AND b IN ((1, 2))",
            "WHERE a IN (?, x) AND b IN ((?))",
            &["1", "1", "2"],
        ),
        (
            "WHERE a IN () OR b IN (?,) OR c IN (,?)",
            "WHERE a IN () OR b IN (?,) OR c IN (,?)",
            &[],
        ),
        (
            "WHERE id = $1 AND x IN ($1, $2, $3)",
            "WHERE id = $1 AND x IN ($1, $2, $3)",
            &[],
        ),
        ("SELECT $$body$$", "SELECT ?", &["body"]),
        ("DO $fn$ x $fn$;", "DO ?;", &[" x "]),
        (
            "SELECT $a$ $$ $b$ $a$, 1",
            "SELECT ?, ?",
            &[" $$ $b$ ", "1"],
        ),
        (
            r#"SELECT "weird""col", "7" FROM t"#,
            r#"SELECT "weird""col", "7" FROM t"#,
            &[],
        ),
        (
            "SELECT `a 1`, [b 2] FROM [dbo].[t9]",
            "SELECT `a 1`, [b 2] FROM [dbo].[t9]",
            &[],
        ),
        ("SELECT arr[1] FROM t", "SELECT arr[?] FROM t", &["1"]),
        ("-- id = 5\nSELECT 1", "-- id = 5\nSELECT ?", &["1"]),
        (
            "SELECT 1 -- it's 2\r\n  FROM t",
            "SELECT ? -- it's 2\nFROM t",
            &["1"],
        ),
        ("/* 42 */ SELECT 1", "/* 42 */ SELECT ?", &["1"]),
        (
            "SELECT 0x1F, 0XdeadBEEF, X'ABCD', x'00', B'0101'",
            "SELECT ?, ?, ?, ?, ?",
            &["0x1F", "0XdeadBEEF", "ABCD", "00", "0101"],
        ),
        (
            "WHERE t1.col2 = 3 AND col_2 = a1b",
            "WHERE t1.col2 = ? AND col_2 = a1b",
            &["3"],
        ),
        (
            "SELECT 1.5e-3, .5, 1e10, 1.5E-3, 2.",
            "SELECT ?, ?, ?, ?, ?",
            &["1.5e-3", ".5", "1e10", "1.5E-3", "2."],
        ),
        ("SELECT -5, a-1", "SELECT -?, a-?", &["5", "1"]),
        ("SELECT 1abc, 2e, 0x1g", "SELECT 1abc, 2e, 0x1g", &[]),
        (
            "  SELECT\n\t a,\r\n  b\n\nFROM   t  \n",
            "SELECT a, b FROM t",
            &[],
        ),
        (
            "WHERE a IS NULL AND b = TRUE AND c <> false",
            "WHERE a IS NULL AND b = TRUE AND c <> false",
            &[],
        ),
        (
            "select * from Users where Id = :id AND x = :1 AND y = @p1 AND z = ?2",
            "select * from Users where Id = :id AND x = :1 AND y = @p1 AND z = ?2",
            &[],
        ),
        (
            "SELECT a::int, 'é', naïve FROM t",
            "SELECT a::int, ?, naïve FROM t",
            &["é"],
        ),
        ("'", "?", &[""]),
        ("SELECT 'abc", "SELECT ?", &["abc"]),
        ("SELECT 'a\\", "SELECT ?", &["a\\"]),
        ("$", "$", &[]),
        ("SELECT $$abc", "SELECT ?", &["abc"]),
        ("SELECT $tag$", "SELECT ?", &[""]),
        ("SELECT \"abc", "SELECT \"abc", &[]),
        ("SELECT 1 /* 2", "SELECT ? /* 2", &["1"]),
        ("a$1 $x b$$c", "a$1 $x b$$c", &[]),
        ("", "", &[]),
        ("a  b\tc ,d ", "a b c ,d", &[]),
        (
            "SELECT x.5, a--b\nc, a/*b*/c, a-b/c*d",
            "SELECT x.?, a--b\nc, a/*b*/c, a-b/c*d",
            &["5"],
        ),
        (
            "SELECT f(1, a), g( a ), h(?)",
            "SELECT f(?, a), g( a ), h(?)",
            &["1"],
        ),
        ("VALUES (?), (?) , (?)", "VALUES (?), (?) , (?)", &[]),
        ("x = ?5 AND y = $2", "x = ?5 AND y = $2", &[]),
        ("a = 1 --c", "a = ? --c", &["1"]),
        ("a = 'x'b'y'", "a = ??", &["x", "y"]),
        ("a = 'x' E'y'", "a = ? ?", &["x", "y"]),
        ("BE'x' e", "BE? e", &["x"]),
        (" \n\t ", "", &[]),
    ];
    for &(input, template, params) in cases {
        let (out, got, truncated) = norm(input);
        assert_eq!(out, template, "template of {input:?}");
        assert_eq!(got, params, "params of {input:?}");
        assert!(!truncated);
        let (again, p2, _) = norm(&out);
        assert_eq!(again, out, "idempotence of {input:?}");
        assert!(p2.is_empty(), "params on re-normalizing {input:?}");
    }
}

#[test]
fn appends_without_clearing() {
    let mut out = String::from("prefix|");
    let mut params = Vec::new();
    normalize_sql("  SELECT 7", &mut out, &mut params);
    normalize_sql(" 'a'", &mut out, &mut params);
    assert_eq!(out, "prefix|SELECT ??");
    assert_eq!(params, vec![9..10, 2..3]);
}

#[test]
fn truncates_long_input() {
    let mut input = String::from("SELECT 'é', ");
    while input.len() < 70 * 1024 {
        input.push_str("1, é, ");
    }
    let mut out = String::new();
    let mut params = Vec::new();
    let n = normalize_sql(&input, &mut out, &mut params);
    assert!(n.truncated);
    assert!(out.len() <= MAX_SQL_INPUT);
    assert!(params.iter().all(|r| r.end <= MAX_SQL_INPUT));
    assert!(!normalize_sql("SELECT 1", &mut out, &mut params).truncated);

    // the cap falls inside a two-byte char: the prefix stops before it
    let odd = format!("a{}", "é".repeat(40_000));
    let mut out = String::new();
    assert!(normalize_sql(&odd, &mut out, &mut params).truncated);
    assert_eq!(out.len(), MAX_SQL_INPUT - 1);
}

fn check(input: &str) -> Result<(), TestCaseError> {
    let mut out = String::from("x");
    let mut params = Vec::new();
    normalize_sql(input, &mut out, &mut params);
    let out = &out[1..];
    for r in &params {
        prop_assert!(input.get(r.clone()).is_some(), "bad range {r:?}");
    }
    let mut again = String::new();
    let mut p2 = Vec::new();
    normalize_sql(out, &mut again, &mut p2);
    prop_assert_eq!(out, again.as_str());
    prop_assert!(p2.is_empty());
    Ok(())
}

fn sqlish() -> impl Strategy<Value = String> {
    let token = prop_oneof![
        Just("SELECT"),
        Just("FROM"),
        Just("WHERE"),
        Just("IN"),
        Just("NULL"),
        Just("e"),
        Just("E"),
        Just("x"),
        Just("b"),
        Just("N"),
        Just("t1"),
        Just("_"),
        Just("é"),
        Just("'"),
        Just("''"),
        Just("\""),
        Just("`"),
        Just("["),
        Just("]"),
        Just("\\"),
        Just("$"),
        Just("$$"),
        Just("$a$"),
        Just("$1"),
        Just("--"),
        Just("-"),
        Just("+"),
        Just("/*"),
        Just("*/"),
        Just("*"),
        Just("/"),
        Just("("),
        Just(")"),
        Just(","),
        Just("?"),
        Just(":"),
        Just("@"),
        Just("."),
        Just("0x"),
        Just("0"),
        Just("1"),
        Just("42"),
        Just("1.5"),
        Just(" "),
        Just("  "),
        Just("\n"),
        Just("\r"),
        Just("\t"),
        Just("="),
        Just(";"),
        Just("#"),
        Just("\u{0}"),
    ];
    prop::collection::vec(token, 0..40).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_strings(input in ".*") {
        check(&input)?;
    }

    #[test]
    fn sql_like_strings(input in sqlish()) {
        check(&input)?;
    }
}
