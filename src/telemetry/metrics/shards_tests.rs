use super::*;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusRecorder};

/// Runs `f` on a thread that says it is worker `index`.
fn as_worker(index: usize, f: impl FnOnce() + Send) {
    std::thread::scope(|s| {
        s.spawn(|| {
            crate::app::workers::pretend(index);
            f();
        });
    });
}

/// A private recorder and a service's targets in it, named `service`.
fn service_targets(service: &'static str) -> (PrometheusRecorder, ServiceTargets) {
    let recorder = PrometheusBuilder::new().build_recorder();
    let targets = targets_in(&recorder, service);
    (recorder, targets)
}

/// The targets of service `service` in `recorder`.
fn targets_in(recorder: &PrometheusRecorder, service: &'static str) -> ServiceTargets {
    metrics::with_local_recorder(recorder, || ServiceTargets {
        accepted: metrics::counter!("accepted", "service" => service),
        bytes_in: metrics::counter!("bytes", "service" => service, "direction" => "in"),
        bytes_out: metrics::counter!("bytes", "service" => service, "direction" => "out"),
        active: metrics::gauge!("active", "service" => service),
    })
}

/// The value of the line starting with `series ` in `text`.
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.parse().ok())
}

#[test]
fn each_worker_writes_its_own_part_and_a_fold_sums_them() {
    let (recorder, targets) = service_targets("s1");
    let shards = ServiceShards::new(targets, Parts::with_workers(2));
    let (accepted, bytes_in, _bytes_out, active) = handles(&shards);
    as_worker(1, || {
        accepted.increment(3);
        bytes_in.increment(100);
        active.increment(2.0);
    });
    as_worker(0, || {
        accepted.increment(1);
        active.decrement(1.0);
    });
    // Worker 1's writes are in its part, worker 0's in its own.
    let part = |w: usize| &shards.parts.0[w];
    assert_eq!(part(1).accepted.load(Relaxed), 3);
    assert_eq!(part(0).accepted.load(Relaxed), 1);
    assert_eq!(part(1).active.load(Relaxed), 2);
    assert_eq!(part(0).active.load(Relaxed), -1);
    // (Other tests' `fold()` may fold these parts too, at any moment: each fold adds only
    // what came since the last.)
    fold();
    let text = recorder.handle().render();
    assert_eq!(
        value(&text, r#"accepted{service="s1"}"#),
        Some(4.0),
        "{text}"
    );
    assert_eq!(
        value(&text, r#"bytes{service="s1",direction="in"}"#),
        Some(100.0),
        "{text}"
    );
    assert_eq!(value(&text, r#"active{service="s1"}"#), Some(1.0), "{text}");
}

#[test]
fn a_second_fold_adds_only_what_came_since() {
    let (recorder, targets) = service_targets("s2");
    let shards = ServiceShards::new(targets, Parts::with_workers(2));
    let (accepted, ..) = handles(&shards);
    as_worker(1, || accepted.increment(5));
    fold();
    fold();
    as_worker(0, || accepted.increment(2));
    shards.fold();
    fold();
    let text = recorder.handle().render();
    assert_eq!(
        value(&text, r#"accepted{service="s2"}"#),
        Some(7.0),
        "{text}"
    );
    // `absolute` moves the sum to a larger value and never back.
    as_worker(1, || {
        accepted.absolute(10);
        accepted.absolute(3);
    });
    fold();
    let text = recorder.handle().render();
    assert_eq!(
        value(&text, r#"accepted{service="s2"}"#),
        Some(10.0),
        "{text}"
    );
}

#[test]
fn a_set_dropped_before_a_fold_folds_what_is_left() {
    let (recorder, targets) = service_targets("s3");
    let shards = ServiceShards::new(targets, Parts::with_workers(2));
    let (accepted, bytes_in, bytes_out, active) = handles(&shards);
    as_worker(1, || bytes_out.increment(42));
    drop((shards, accepted, bytes_in, bytes_out, active));
    let text = recorder.handle().render();
    assert_eq!(
        value(&text, r#"bytes{service="s3",direction="out"}"#),
        Some(42.0),
        "{text}"
    );
    // And it left the registry.
    fold();
}

#[test]
fn route_requests_and_durations_reach_the_recorder() {
    let recorder = PrometheusBuilder::new().build_recorder();
    let (by_class, duration) = metrics::with_local_recorder(&recorder, || {
        let by_class = ["1xx", "2xx", "3xx", "4xx", "5xx"]
            .map(|code| metrics::counter!("requests", "route" => "r", "code" => code));
        (by_class, metrics::histogram!("duration", "route" => "r"))
    });
    let route = RouteShards::with_parts(by_class, duration, Parts::with_workers(2));
    as_worker(0, || route.record(1, 0.002));
    as_worker(1, || {
        route.record(1, 0.004);
        route.record(4, 0.5);
    });
    assert_eq!(route.parts.0[1].by_class[1].load(Relaxed), 1);
    fold();
    let text = recorder.handle().render();
    assert_eq!(
        value(&text, r#"requests{route="r",code="2xx"}"#),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        value(&text, r#"requests{route="r",code="5xx"}"#),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        value(&text, r#"duration_count{route="r"}"#),
        Some(3.0),
        "{text}"
    );
    let sum = value(&text, r#"duration_sum{route="r"}"#).unwrap_or_default();
    assert!((sum - 0.506).abs() < 1e-9, "{text}");
    // Folded samples are gone from the parts: a second fold adds none.
    fold();
    let text = recorder.handle().render();
    assert_eq!(
        value(&text, r#"duration_count{route="r"}"#),
        Some(3.0),
        "{text}"
    );
}

#[test]
fn two_sets_of_one_service_add_up_in_its_gauge() {
    // A service removed and added again while its old connections drain: the old set and the
    // new one write the same series.
    let recorder = PrometheusBuilder::new().build_recorder();
    let targets = || targets_in(&recorder, "s4");
    let (old, new) = (
        ServiceShards::new(targets(), Parts::with_workers(2)),
        ServiceShards::new(targets(), Parts::with_workers(2)),
    );
    let (old_handles, new_handles) = (handles(&old), handles(&new));
    as_worker(0, || {
        old_handles.0.increment(5);
        old_handles.3.increment(5.0);
    });
    as_worker(1, || {
        new_handles.0.increment(3);
        new_handles.3.increment(3.0);
    });
    fold();
    let text = recorder.handle().render();
    assert_eq!(value(&text, r#"active{service="s4"}"#), Some(8.0), "{text}");
    assert_eq!(
        value(&text, r#"accepted{service="s4"}"#),
        Some(8.0),
        "{text}"
    );
    // The old set's connections close; it goes.
    as_worker(0, || old_handles.3.decrement(5.0));
    drop((old, old_handles));
    fold();
    let text = recorder.handle().render();
    assert_eq!(value(&text, r#"active{service="s4"}"#), Some(3.0), "{text}");
    assert_eq!(
        value(&text, r#"accepted{service="s4"}"#),
        Some(8.0),
        "{text}"
    );
}
