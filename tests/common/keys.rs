//! The loopback OpenRouter's key management: `POST /keys`, `GET /keys/{hash}`,
//! `PATCH /keys/{hash}` with a management key, and `GET /key` with each key's own figures, as
//! `shared/OPENROUTER.md` describes them. Installed as the server's responder: scripted replies
//! (chat answers) still go first.

use super::{FakeOpenRouter, Recorded, Reply, API_KEY, MODELS};
use std::sync::{Arc, Mutex};

/// The management key the tests export as `OPENROUTER_MANAGEMENT_KEY`.
pub const MANAGEMENT_KEY: &str = "sk-or-v1-MGMTSECRET-5b8d0e4a21";

/// One key the fake made.
#[derive(Debug, Clone)]
pub struct FakeKey {
    pub hash: String,
    pub name: String,
    pub key: String,
    pub limit: Option<f64>,
    pub limit_reset: Option<String>,
    pub disabled: bool,
    /// Deleted on OpenRouter: 404 for management, 401 for the key itself.
    pub deleted: bool,
    pub usage_daily: f64,
    pub usage_monthly: f64,
}

impl FakeKey {
    fn data(&self) -> serde_json::Value {
        serde_json::json!({
            "hash": self.hash, "name": self.name,
            "label": format!("sk-or-v1-{}...{}", &self.hash[..3], &self.hash[self.hash.len() - 3..]),
            "disabled": self.disabled, "limit": self.limit,
            "limit_remaining": self.limit.map(|l| l - self.usage_monthly),
            "limit_reset": self.limit_reset, "usage": self.usage_monthly,
            "usage_daily": self.usage_daily, "usage_weekly": self.usage_monthly,
            "usage_monthly": self.usage_monthly,
            "created_at": "2026-01-01T00:00:00Z", "updated_at": null,
        })
    }
}

#[derive(Default)]
pub struct FakeKeys {
    pub keys: Mutex<Vec<FakeKey>>,
}

impl FakeKeys {
    /// Answers key management, `/key` and `/models` on `server` from now on.
    pub fn install(server: &FakeOpenRouter) -> Arc<FakeKeys> {
        let keys = Arc::new(FakeKeys::default());
        let k = keys.clone();
        server.respond_with(move |r| k.answer(r));
        keys
    }

    pub fn all(&self) -> Vec<FakeKey> {
        self.keys.lock().unwrap().clone()
    }

    pub fn update(&self, f: impl FnOnce(&mut FakeKey)) {
        let mut keys = self.keys.lock().unwrap();
        f(keys.last_mut().expect("a key was created"));
    }

    fn answer(&self, r: &Recorded) -> Reply {
        let path = r.path.split('?').next().unwrap_or_default();
        let route = path.trim_start_matches("/api/v1");
        let auth = r
            .headers
            .get("authorization")
            .and_then(|a| a.strip_prefix("Bearer "))
            .unwrap_or_default()
            .to_string();
        if route == "/models" {
            return Reply::json(200, MODELS);
        }
        if route == "/key" {
            if auth == API_KEY {
                return Reply::json(
                    200,
                    r#"{"data":{"label":"sk-or-v1-api...key","limit":null,"limit_remaining":null,"limit_reset":null,"usage":1,"usage_daily":1,"usage_weekly":1,"usage_monthly":1}}"#,
                );
            }
            let keys = self.keys.lock().unwrap();
            return match keys
                .iter()
                .find(|k| k.key == auth && !k.deleted && !k.disabled)
            {
                Some(k) => Reply::json(200, &serde_json::json!({ "data": k.data() }).to_string()),
                None => unauthorized(),
            };
        }
        let Some(rest) = route.strip_prefix("/keys") else {
            return Reply::json(
                500,
                r#"{"error":{"code":500,"message":"the test scripted no reply for this request"}}"#,
            );
        };
        if auth != MANAGEMENT_KEY {
            // An ordinary key (ours, or one the fake made) is known but may not manage keys.
            let known = auth == API_KEY || self.keys.lock().unwrap().iter().any(|k| k.key == auth);
            return if known {
                Reply::json(
                    403,
                    r#"{"error":{"code":403,"message":"Only management keys can perform this operation"}}"#,
                )
            } else {
                unauthorized()
            };
        }
        let mut keys = self.keys.lock().unwrap();
        match (r.method.as_str(), rest.trim_start_matches('/')) {
            ("POST", "") => {
                let body: serde_json::Value = serde_json::from_str(&r.body).unwrap_or_default();
                let n = keys.len() + 1;
                let k = FakeKey {
                    hash: format!("{n:02}f1e2d3c4b5a69788"),
                    name: body["name"].as_str().unwrap_or_default().to_string(),
                    key: format!("sk-or-v1-CREATEDSECRET{n}-a9c4e1f07b3d"),
                    limit: body["limit"].as_f64(),
                    limit_reset: body["limit_reset"].as_str().map(str::to_string),
                    disabled: false,
                    deleted: false,
                    usage_daily: 0.0,
                    usage_monthly: 0.0,
                };
                let out = serde_json::json!({ "data": k.data(), "key": k.key });
                keys.push(k);
                Reply::json(201, &out.to_string())
            }
            (method, hash) => {
                let Some(k) = keys.iter_mut().find(|k| k.hash == hash && !k.deleted) else {
                    return Reply::json(404, r#"{"error":{"code":404,"message":"Key not found"}}"#);
                };
                if method == "PATCH" {
                    let body: serde_json::Value = serde_json::from_str(&r.body).unwrap_or_default();
                    if let Some(l) = body.get("limit") {
                        k.limit = l.as_f64();
                    }
                    if let Some(d) = body.get("disabled").and_then(|d| d.as_bool()) {
                        k.disabled = d;
                    }
                }
                Reply::json(200, &serde_json::json!({ "data": k.data() }).to_string())
            }
        }
    }
}

fn unauthorized() -> Reply {
    Reply::json(401, r#"{"error":{"code":401,"message":"User not found."}}"#)
}
