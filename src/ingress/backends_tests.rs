use super::*;

fn split(weights: &[u32]) -> Split {
    let services: Vec<WeightedService> = weights
        .iter()
        .enumerate()
        .map(|(i, &weight)| WeightedService {
            service: format!("s{i}").into(),
            weight,
            role: if i == 0 { Role::Primary } else { Role::Canary },
        })
        .collect();
    Split::new(&services).unwrap()
}

fn index(s: &Split, b: &Backend) -> usize {
    s.backends()
        .iter()
        .position(|x| std::ptr::eq(x, b))
        .unwrap()
}

#[test]
fn every_draw_lands_in_its_backends_share_and_weight_zero_gets_none() {
    let s = split(&[0, 3, 0, 1, 0]);
    let got: Vec<usize> = (0..4).map(|d| index(&s, s.choose_at(d))).collect();
    assert_eq!(got, [1, 1, 1, 3]);
    assert_eq!(
        index(&s, s.choose_at(99)),
        4,
        "past the sum: the last, never a panic"
    );
    for _ in 0..10_000 {
        let i = index(&s, s.choose());
        assert!(i == 1 || i == 3, "weight 0 chosen: {i}");
    }
}

#[test]
fn draws_follow_the_weights() {
    fastrand::seed(11);
    let s = split(&[90, 10]);
    let mut counts = [0u32; 2];
    for _ in 0..100_000 {
        counts[index(&s, s.choose())] += 1;
    }
    // Binomial standard deviation at 100k draws is 0.095 %; ±0.5 % is over five of them.
    let share = f64::from(counts[1]) / 100_000.0;
    assert!((share - 0.10).abs() < 0.005, "{counts:?}");
}

#[test]
fn all_weights_zero_or_no_backends_make_no_split() {
    assert!(Split::new(&[]).is_none());
    let zero = WeightedService {
        service: "a".into(),
        weight: 0,
        role: Role::Primary,
    };
    assert!(Split::new(&[zero.clone(), zero]).is_none());
}

#[test]
fn huge_weights_do_not_overflow() {
    let s = split(&[u32::MAX, u32::MAX]);
    assert_eq!(index(&s, s.choose_at(u64::from(u32::MAX))), 1);
    assert_eq!(index(&s, s.choose_at(u64::from(u32::MAX) - 1)), 0);
}

#[test]
fn hash_on_parses_its_four_forms_and_refuses_others() {
    assert_eq!(HashOn::parse("client_ip"), Ok(HashOn::ClientIp));
    assert_eq!(HashOn::parse("path"), Ok(HashOn::Path));
    assert_eq!(
        HashOn::parse("header:X-User"),
        Ok(HashOn::Header("x-user".into()))
    );
    assert_eq!(
        HashOn::parse("cookie:Session"),
        Ok(HashOn::Cookie("Session".into()))
    );
    for bad in ["", "header:", "cookie:a b", "ip", "query:x", "header:x:y"] {
        assert!(HashOn::parse(bad).is_err(), "{bad:?} accepted");
    }
    for text in ["client_ip", "path", "header:x-user", "cookie:Session"] {
        assert_eq!(HashOn::parse(text).unwrap().to_string(), text);
    }
}
