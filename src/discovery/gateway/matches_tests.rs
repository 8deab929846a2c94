use super::*;
use serde_json::json;

/// The match written as the conformance manifests write it.
fn parse(m: serde_json::Value) -> HttpRouteMatch {
    serde_json::from_value(m).unwrap_or_else(|e| panic!("match: {e}"))
}

fn get(m: serde_json::Value) -> Result<RouteMatch, Unsupported> {
    route_match(Some(&parse(m)))
}

fn ok(m: serde_json::Value) -> RouteMatch {
    get(m).unwrap_or_else(|e| panic!("refused: {e}"))
}

#[test]
fn no_match_and_an_empty_match_are_path_prefix_root() {
    let root = route_match(None).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        (root.path.as_str(), root.path_type),
        ("/", PathType::Prefix)
    );
    assert!(root.conditions.is_empty());
    assert_eq!(ok(json!({})), root);
}

/// HTTPRouteMatching / HTTPRouteExactPathMatching / HTTPRoutePathMatchOrder path types.
#[test]
fn path_types() {
    let m = ok(json!({"path": {"type": "Exact", "value": "/exact"}}));
    assert_eq!((m.path.as_str(), m.path_type), ("/exact", PathType::Exact));
    let m = ok(json!({"path": {"value": "/v2"}}));
    assert_eq!((m.path.as_str(), m.path_type), ("/v2", PathType::Prefix));
    let m = ok(json!({"path": {"type": "RegularExpression", "value": "/v2/[a-z]+"}}));
    assert_eq!(m.path_type, PathType::RegularExpression);
    assert!(get(json!({"path": {"type": "Glob", "value": "/x"}})).is_err());
    assert!(get(json!({"path": {"type": "RegularExpression", "value": "(/"}})).is_err());
    assert!(get(json!({"path": {"type": "Exact", "value": "x"}})).is_err());
}

/// HTTPRouteHeaderMatching: names case-insensitive (lowercased), values exact; the first of
/// two entries with one name counts.
#[test]
fn header_matches() {
    let m = ok(json!({"headers": [
        {"name": "Version", "value": "two"},
        {"name": "Color", "value": "orange"},
        {"name": "version", "value": "three"},
    ]}));
    let got: Vec<(&str, &ValueMatch)> = m
        .conditions
        .headers
        .iter()
        .map(|h| (&*h.name, &h.value))
        .collect();
    assert_eq!(
        got,
        vec![
            ("color", &ValueMatch::Exact("orange".into())),
            ("version", &ValueMatch::Exact("two".into())),
        ]
    );
    let m = ok(json!({"headers": [{"type": "RegularExpression", "name": "x", "value": "a+"}]}));
    assert!(m.conditions.headers[0].value.matches(b"aaa"));
    assert!(!m.conditions.headers[0].value.matches(b"aab"));
    assert!(get(json!({"headers": [{"type": "Prefix", "name": "x", "value": "a"}]})).is_err());
}

/// HTTPRouteQueryParamMatching: names case-sensitive, values exact or regex.
#[test]
fn query_matches() {
    let m = ok(json!({"queryParams": [
        {"name": "animal", "value": "whale"},
        {"name": "Animal", "value": "dolphin"},
    ]}));
    assert_eq!(
        m.conditions.query.len(),
        2,
        "case-sensitive names are distinct"
    );
    assert!(
        get(json!({"queryParams": [{"value": "x"}]})).is_err(),
        "a name is needed"
    );
}

/// HTTPRouteMethodMatching: the method is compared as written.
#[test]
fn method_match() {
    let m = ok(json!({"method": "POST", "path": {"value": "/"}}));
    assert_eq!(m.conditions.method.as_deref(), Some("POST"));
    assert!(m.conditions.precedence() < Conditions::default().precedence());
}
