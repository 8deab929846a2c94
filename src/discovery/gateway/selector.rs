//! Label selectors (`matchLabels`, `matchExpressions` with `In`, `NotIn`, `Exists`,
//! `DoesNotExist`), for a listener's `allowedRoutes.namespaces.selector`: a pure function
//! with table tests. An unknown operator matches nothing (the safe side for admission).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use std::collections::BTreeMap;

/// Whether `labels` satisfy `selector` (an empty selector matches everything).
pub fn matches(selector: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    let plain = selector
        .match_labels
        .iter()
        .flatten()
        .all(|(k, v)| labels.get(k) == Some(v));
    let expressions = selector.match_expressions.iter().flatten().all(|e| {
        let values = e.values.as_deref().unwrap_or_default();
        let value = labels.get(&e.key);
        match e.operator.as_str() {
            "In" => value.is_some_and(|v| values.contains(v)),
            "NotIn" => value.is_none_or(|v| !values.contains(v)),
            "Exists" => value.is_some(),
            "DoesNotExist" => value.is_none(),
            _ => false,
        }
    });
    plain && expressions
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sel(v: serde_json::Value) -> LabelSelector {
        serde_json::from_value(v).unwrap_or_else(|e| panic!("selector: {e}"))
    }

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn match_labels_and_expressions() {
        let s = sel(json!({"matchLabels": {"gateway-conformance": "web-backend"}}));
        assert!(matches(
            &s,
            &labels(&[("gateway-conformance", "web-backend"), ("x", "y")])
        ));
        assert!(!matches(&s, &labels(&[("gateway-conformance", "other")])));
        assert!(!matches(&s, &labels(&[])));
        let s = sel(json!({"matchExpressions": [
            {"key": "team", "operator": "In", "values": ["a", "b"]},
            {"key": "env", "operator": "NotIn", "values": ["prod"]},
            {"key": "owner", "operator": "Exists"},
            {"key": "legacy", "operator": "DoesNotExist"}]}));
        assert!(matches(&s, &labels(&[("team", "a"), ("owner", "me")])));
        assert!(!matches(&s, &labels(&[("team", "c"), ("owner", "me")])));
        assert!(!matches(
            &s,
            &labels(&[("team", "a"), ("owner", "me"), ("env", "prod")])
        ));
        assert!(!matches(&s, &labels(&[("team", "a")])));
        assert!(!matches(
            &s,
            &labels(&[("team", "a"), ("owner", "me"), ("legacy", "1")])
        ));
        assert!(matches(&sel(json!({})), &labels(&[])));
        let odd =
            sel(json!({"matchExpressions": [{"key": "a", "operator": "Gt", "values": ["1"]}]}));
        assert!(!matches(&odd, &labels(&[("a", "2")])));
    }
}
