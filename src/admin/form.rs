//! `application/x-www-form-urlencoded` values of the admin endpoints' queries and forms.

/// The decoded value of `name` in a form-encoded query.
pub(super) fn form_value(query: &str, name: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (decode(k)? == name).then(|| decode(v)).flatten()
    })
}

/// Decodes one name or value (`+` is a space), strict about `%`: `None` when malformed.
pub(super) fn decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values() {
        let q = "url=http%3A%2F%2Fa.test%2Fimg%2Fx&all=1&bad=%zz&sp=a+b";
        assert_eq!(form_value(q, "url").as_deref(), Some("http://a.test/img/x"));
        assert_eq!(form_value(q, "all").as_deref(), Some("1"));
        assert_eq!(form_value(q, "bad"), None);
        assert_eq!(form_value(q, "sp").as_deref(), Some("a b"));
        assert_eq!(form_value(q, "none"), None);
    }
}
