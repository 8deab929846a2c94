//! Section 2: Path normalisation: routing, the `allow_sources` check and the target the
//! endpoint gets all use the normalised path (dot segments removed, empty segments merged,
//! unreserved escapes decoded, reserved ones kept with upper-case hex, the query untouched);
//! targets that cannot be normalised safely get 400 `invalid request target`; their framing
//! was sound, so the connection serves on.

use crate::*;

/// `GET target` for a.test is refused with 403 and the connection stays usable.
async fn forbidden(target: &str) {
    Case::send(get(target), local(403, FORBIDDEN, false))
        .then_next()
        .run()
        .await;
}

/// `GET target` for a.test reaches the backend as `GET seen`.
async fn forwarded_as(target: &str, seen: &str) {
    let line = format!("GET {seen}");
    Case::send(get(target), ok(&line))
        .up(fwd(&line, "a.test", ""))
        .then_next()
        .run()
        .await;
}

/// `GET target` for a.test gets 400 `invalid request target`, nothing is forwarded, and the
/// connection stays usable.
async fn bad_target(target: &str) {
    Case::send(get(target), local(400, BAD_TARGET, false))
        .then_next()
        .run()
        .await;
}

#[tokio::test]
async fn admin_itself_is_forbidden() {
    forbidden("/admin").await;
}

#[tokio::test]
async fn percent_encoded_letter_admin_is_forbidden() {
    forbidden("/%61dmin").await;
}

#[tokio::test]
async fn double_slash_admin_is_forbidden() {
    forbidden("//admin").await;
}

#[tokio::test]
async fn dot_dot_admin_is_forbidden() {
    forbidden("/x/../admin").await;
}

#[tokio::test]
async fn dot_admin_is_forbidden() {
    forbidden("/./admin").await;
}

#[tokio::test]
async fn encoded_dot_dot_admin_is_forbidden() {
    forbidden("/%2e%2e/admin").await;
}

#[tokio::test]
async fn upper_case_encoded_dot_dot_admin_is_forbidden() {
    forbidden("/x/%2E%2E/admin").await;
}

#[tokio::test]
async fn admin_trailing_dot_is_forbidden() {
    forbidden("/admin/.").await;
}

#[tokio::test]
async fn admin_subpath_with_dot_dot_is_forbidden() {
    forbidden("/admin/x/..").await;
}

#[tokio::test]
async fn upper_case_admin_is_an_ordinary_path() {
    forwarded_as("/ADMIN", "/ADMIN").await;
}

#[tokio::test]
async fn dot_dot_is_resolved_before_forwarding() {
    forwarded_as("/x/../y", "/y").await;
}

#[tokio::test]
async fn empty_segments_are_merged() {
    forwarded_as("//a///b", "/a/b").await;
}

#[tokio::test]
async fn encoded_tilde_is_decoded() {
    forwarded_as("/%7Euser", "/~user").await;
}

#[tokio::test]
async fn encoded_colon_stays_encoded_in_upper_case() {
    forwarded_as("/a%3ab", "/a%3Ab").await;
}

#[tokio::test]
async fn the_query_is_untouched() {
    forwarded_as("/x/../y?a=/../%2F", "/y?a=/../%2F").await;
}

#[tokio::test]
async fn dot_dot_above_the_root_stays_at_the_root() {
    forwarded_as("/../../y", "/y").await;
}

#[tokio::test]
async fn dot_segments_in_the_middle() {
    forwarded_as("/a/./b/../c", "/a/c").await;
}

#[tokio::test]
async fn encoded_slash_is_refused() {
    bad_target("/a%2Fb").await;
}

#[tokio::test]
async fn encoded_slash_lower_case_is_refused() {
    bad_target("/a%2fb").await;
}

#[tokio::test]
async fn encoded_backslash_is_refused() {
    bad_target("/a%5Cb").await;
}

/// httparse accepts `\` in a target, so the proxy itself must refuse it.
#[tokio::test]
async fn backslash_is_refused() {
    bad_target("/a\\b").await;
}

#[tokio::test]
async fn encoded_nul_is_refused() {
    bad_target("/a%00b").await;
}

#[tokio::test]
async fn fragment_is_refused() {
    bad_target("/a#frag").await;
}

#[tokio::test]
async fn invalid_escape_is_refused() {
    bad_target("/a%zz").await;
}

#[tokio::test]
async fn truncated_escape_is_refused() {
    bad_target("/a%2").await;
}

#[tokio::test]
async fn target_without_leading_slash_is_refused() {
    bad_target("a/b").await;
}

/// Absolute form (RFC 9112 §3.2.2): the target's authority routes, not `Host`.
#[tokio::test]
async fn absolute_form_is_routed_by_its_authority_and_normalised() {
    Case::send(
        "GET http://a.test/x/../admin HTTP/1.1\r\nHost: other.test\r\nx-request-id: t1\r\n\r\n",
        local(403, FORBIDDEN, false),
    )
    .then_next()
    .run()
    .await;
}

#[tokio::test]
async fn absolute_form_reaches_the_backend_in_origin_form() {
    Case::send(
        "GET http://a.test/y HTTP/1.1\r\nHost: other.test\r\nx-request-id: t1\r\n\r\n",
        ok("GET /y"),
    )
    .up(fwd("GET /y", "a.test", ""))
    .then_next()
    .run()
    .await;
}
