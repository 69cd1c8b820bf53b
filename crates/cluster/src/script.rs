//! Server-side Lua scripts: `EVALSHA` (the body is not sent), and `EVAL` with the body when the
//! server answers `NOSCRIPT` (after a restart, a failover or `SCRIPT FLUSH`). `EVAL` also puts
//! the script back into the server's cache, so the next call is an `EVALSHA` again: one extra
//! round trip per server after it forgot the script, never a separate `SCRIPT LOAD`.
//!
//! On a Cluster both are routed by their first key, so every key a script touches must share a
//! hash slot (the callers' key names take care of it).

use redis::{Cmd, ErrorKind, FromRedisValue, RedisResult, ServerErrorKind, aio::ConnectionLike};

/// One script: its body and SHA-1.
pub(crate) struct Lua {
    body: &'static str,
    sha: String,
}

impl Lua {
    pub(crate) fn new(body: &'static str) -> Self {
        Self {
            body,
            sha: redis::Script::new(body).get_hash().to_string(),
        }
    }

    /// Runs the script with `keys` keys, `fill` appending the keys then the arguments.
    pub(crate) async fn run<T, C>(
        &self,
        conn: &mut C,
        keys: usize,
        fill: impl Fn(&mut Cmd),
    ) -> RedisResult<T>
    where
        T: FromRedisValue,
        C: ConnectionLike,
    {
        let mut cmd = redis::cmd("EVALSHA");
        cmd.arg(&self.sha).arg(keys);
        fill(&mut cmd);
        match cmd.query_async(conn).await {
            Err(e) if e.kind() == ErrorKind::Server(ServerErrorKind::NoScript) => {
                let mut cmd = redis::cmd("EVAL");
                cmd.arg(self.body).arg(keys);
                fill(&mut cmd);
                cmd.query_async(conn).await
            }
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha_is_the_body_digest() {
        // SHA-1 of "return 1", as `SCRIPT LOAD` would answer it.
        assert_eq!(
            Lua::new("return 1").sha,
            "e0e1f9fabfc9d4800c877a703b823ac0578ff8db"
        );
    }
}
