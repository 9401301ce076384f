//! Tests of strict JSON reading: the top-level check used for tokens and documents, and the
//! every-level check used for PDP answers and JWKs.

use super::*;
use serde::de::IgnoredAny;
use serde_json::json;
use serde_json::value::RawValue;

fn unique(json: &str) -> bool {
    from_str_unique::<IgnoredAny>(json).is_ok()
}

#[test]
fn member_names_must_be_distinct_at_the_top_level() {
    assert!(unique(r#"{"a":1,"b":{"a":2}}"#));
    assert!(unique(r#"{}"#));
    assert!(!unique(r#"{"a":1,"a":1}"#));
    assert!(!unique(r#"{"a":1,"b":2,"a":3}"#));
    // Names are compared unescaped.
    assert!(!unique(r#"{"a\u0061":1,"aa":1}"#));
    assert!(!unique(r#"{"\u0061":1,"a":1}"#));
    // Only objects, and nothing after them.
    assert!(!unique(r#"[1]"#));
    assert!(!unique(r#""a""#));
    assert!(!unique(r#"{"a":1} x"#));
    assert!(!unique(r#"{"a":1"#));
}

#[test]
fn the_slice_form_checks_the_same() {
    assert!(from_slice_unique::<IgnoredAny>(br#"{"a":1,"b":{"a":2}}"#).is_ok());
    assert!(from_slice_unique::<IgnoredAny>(br#"{"a":1,"a":1}"#).is_err());
    assert!(from_slice_unique::<IgnoredAny>(br#"{"\u0061":1,"a":1}"#).is_err());
    assert!(from_slice_unique::<IgnoredAny>(b"{\"a\":1} x").is_err());
    assert!(from_slice_unique::<IgnoredAny>(b"{\"\xff\":1}").is_err());
}

#[derive(Deserialize, Debug)]
struct Claims<'a> {
    #[serde(borrow)]
    iss: Option<Cow<'a, str>>,
    exp: Option<i64>,
    #[serde(borrow)]
    details: Option<&'a RawValue>,
}

#[test]
fn reads_what_the_derive_reads() {
    let c: Claims = from_str_unique(r#"{"iss":"x","other":[1,{"a":2}],"exp":5,"details":[{"t":"u"}]}"#).unwrap();
    assert_eq!(c.iss.as_deref(), Some("x"));
    assert_eq!(c.exp, Some(5));
    assert_eq!(c.details.unwrap().get(), r#"[{"t":"u"}]"#);
    // Escaped names still reach their field.
    let c: Claims = from_str_unique(r#"{"i\u0073s":"y"}"#).unwrap();
    assert_eq!(c.iss.as_deref(), Some("y"));
    // A repeated unknown member is refused as well as a repeated known one.
    assert!(from_str_unique::<Claims>(r#"{"other":1,"other":2}"#).is_err());
    assert!(from_str_unique::<Claims>(r#"{"exp":1,"exp":2}"#).is_err());
    // Wrong types are still errors.
    assert!(from_str_unique::<Claims>(r#"{"exp":"soon"}"#).is_err());
    // The slice form borrows the same way.
    let c: Claims = from_slice_unique(br#"{"details":{"a":1}}"#).unwrap();
    assert_eq!(c.details.unwrap().get(), r#"{"a":1}"#);
}

#[test]
fn values_are_what_serde_json_reads_when_names_are_distinct() {
    let text = r#"{"a":[1,-2,3.5,"s",true,null,{"b":{"c":[]}}],"A":{},"e\u0301":"x","big":18446744073709551615}"#;
    let plain: Value = serde_json::from_str(text).unwrap();
    assert_eq!(value_from_str(text, Names::Exact).unwrap(), plain);
    let folded = r#"{"a":[1,-2,3.5,"s",true,null,{"b":{"c":[]}}],"e\u0301":"x","big":18446744073709551615}"#;
    assert_eq!(
        value_from_str(folded, Names::IgnoreAsciiCase).unwrap(),
        serde_json::from_str::<Value>(folded).unwrap()
    );
    // The same name in different objects is not a repetition.
    assert_eq!(
        value_from_str(r#"{"a":{"a":{"a":1}},"b":[{"a":1},{"a":2}]}"#, Names::IgnoreAsciiCase).unwrap(),
        json!({"a":{"a":{"a":1}},"b":[{"a":1},{"a":2}]})
    );
    // Scalars and arrays at the top are values too.
    assert_eq!(value_from_str("[1]", Names::Exact).unwrap(), json!([1]));
    assert_eq!(value_from_str(" \"s\" ", Names::Exact).unwrap(), json!("s"));
}

#[test]
fn a_repeated_name_at_any_depth_is_refused() {
    for names in [Names::Exact, Names::IgnoreAsciiCase] {
        for bad in [
            r#"{"a":1,"a":1}"#,
            r#"{"a":1,"a":2}"#,
            r#"{"x":{"a":1,"a":2}}"#,
            r#"{"x":[{"ok":1},{"a":1,"b":0,"a":2}]}"#,
            r#"[[[{"deep":{"a":null,"a":null}}]]]"#,
            r#"{"\u0061":1,"a":1}"#,
        ] {
            let e = value_from_str(bad, names).unwrap_err();
            assert!(e.is_data(), "{bad}: {e}");
        }
    }
    // Two casings: one name when case is ignored, two otherwise.
    for two_casings in [r#"{"decision":"Deny","Decision":"Permit"}"#, r#"{"x":[{"Status":{},"STATUS":{}}]}"#] {
        assert!(value_from_str(two_casings, Names::IgnoreAsciiCase).is_err(), "{two_casings}");
        assert!(value_from_str(two_casings, Names::Exact).is_ok(), "{two_casings}");
    }
    // Not JSON, or something after the value: a syntax error, not a data error.
    for bad in [&b""[..], b"{", b"{\"a\":1} x", b"nope", b"{\"a\" 1}"] {
        let e = value_from_slice(bad, Names::Exact).unwrap_err();
        assert!(!e.is_data(), "{}", String::from_utf8_lossy(bad));
    }
    // serde_json's recursion limit still bounds the depth.
    let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
    assert!(value_from_str(&deep, Names::Exact).is_err());
}

#[test]
fn many_members_are_checked_without_quadratic_cost() {
    // 50,000 distinct names, then one repeated: found (a hash set, not a scan: a scan would
    // take minutes here; speed itself is not asserted, tests run on busy machines).
    let mut text = String::from("{");
    for i in 0..50_000 {
        text.push_str(&format!("\"M{i}\":0,"));
    }
    let ok = format!("{}\"last\":0}}", text);
    let bad = format!("{}\"m7\":0}}", text);
    assert!(value_from_str(&ok, Names::IgnoreAsciiCase).is_ok());
    assert!(value_from_str(&bad, Names::IgnoreAsciiCase).is_err());
    assert!(value_from_str(&bad, Names::Exact).is_ok());
}

#[test]
fn many_top_level_members_are_checked_too() {
    // Past the short list, names go to a hash set: a repeat among many is still found, early
    // or late, and distinct names pass.
    let names: Vec<String> = (0..50_000).map(|i| format!("\"m{i}\":0")).collect();
    let ok = format!("{{{}}}", names.join(","));
    assert!(from_str_unique::<IgnoredAny>(&ok).is_ok());
    for repeated in ["m0", "m31", "m32", "m49999"] {
        let bad = format!("{{{},\"{repeated}\":1}}", names.join(","));
        assert!(from_str_unique::<IgnoredAny>(&bad).is_err(), "{repeated}");
    }
    let early = format!("{{\"m5\":1,{}}}", names.join(","));
    assert!(from_slice_unique::<IgnoredAny>(early.as_bytes()).is_err());
}

#[test]
fn the_name_filter_never_hides_a_repeat() {
    // Names that share a bit (same length and end bytes) and names that do not, repeated at
    // every distance, with and without escapes: each repeat is found, and no distinct set is
    // refused. Past `Seen::FEW` names the hash set takes over.
    let names: Vec<String> = (0..40)
        .map(|i| match i % 4 {
            0 => format!("a{i:02}z"),
            1 => format!("b{}", "x".repeat(i)),
            2 => format!("a{}z", (b'a' + (i % 26) as u8) as char),
            _ => format!("n{i}"),
        })
        .collect();
    for count in [1, 2, 5, 16, 31, 32, 33, 40] {
        let members: Vec<String> = names[..count].iter().map(|n| format!(r#""{n}":1"#)).collect();
        assert!(unique(&format!("{{{}}}", members.join(","))), "{count}");
        for name in &names[..count] {
            let mut with_repeat = members.clone();
            with_repeat.push(format!(r#""{name}":2"#));
            assert!(!unique(&format!("{{{}}}", with_repeat.join(","))), "{count} {name}");
            // The same name, escaped.
            let escaped = name.replacen('a', r"\u0061", 1).replacen('b', r"\u0062", 1);
            let mut with_escaped = members.clone();
            with_escaped.push(format!(r#""{escaped}":2"#));
            assert!(!unique(&format!("{{{}}}", with_escaped.join(","))), "{count} {escaped}");
        }
    }
}
