//! Rules of the `[metrics]` section (pure).

/// Whether `namespace` can prefix the imgproxy families: a Prometheus name part, and not
/// `imgforge` (whose `imgforge_requests_total` is ours, with other labels).
pub fn check_namespace(namespace: &str) -> Result<(), String> {
    let mut chars = namespace.chars();
    let valid = match chars.next() {
        None => true,
        Some(c) => {
            (c.is_ascii_alphabetic() || c == '_')
                && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        }
    };
    if !valid {
        return Err(format!(
            "invalid namespace {namespace:?}: letters, digits and '_', not starting with a digit"
        ));
    }
    if namespace == "imgforge" {
        return Err(
            "namespace \"imgforge\" would collide with imgforge's own families (imgforge_requests_total)"
                .into(),
        );
    }
    Ok(())
}
