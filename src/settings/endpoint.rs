//! Which kind of server `base_url` names. OpenRouter takes fields and headers of its own (the
//! `provider` routing object, app attribution); a plain OpenAI-compatible endpoint gets none of
//! them (OpenAI itself refuses unknown fields). This is the one place that decides it: the
//! policy builds the `provider` object only for [`Endpoint::OpenRouter`], and the client sends
//! the attribution headers only there.

/// The kind of endpoint a `base_url` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// Host `openrouter.ai` (or one of its subdomains), whatever the scheme, port or path.
    OpenRouter,
    /// Any other OpenAI-compatible endpoint (OpenAI, Scaleway, a llama.cpp server, …), and a
    /// `base_url` that is not a URL at all (it cannot be reached anyway).
    Plain,
}

/// The host whose endpoints are OpenRouter's.
pub const OPENROUTER_HOST: &str = "openrouter.ai";

impl Endpoint {
    pub fn of(base_url: &str) -> Endpoint {
        let host = reqwest::Url::parse(base_url.trim()).ok().and_then(|u| {
            u.host_str()
                .map(|h| h.trim_end_matches('.').to_ascii_lowercase())
        });
        match host {
            Some(h)
                if h == OPENROUTER_HOST
                    || h.strip_suffix(OPENROUTER_HOST)
                        .is_some_and(|sub| sub.ends_with('.')) =>
            {
                Endpoint::OpenRouter
            }
            _ => Endpoint::Plain,
        }
    }

    pub fn is_openrouter(self) -> bool {
        self == Endpoint::OpenRouter
    }

    /// Whether `model` takes `cache_control` breakpoints here: Anthropic's and Gemini's models
    /// through OpenRouter. Others cache long prefixes by themselves (OpenAI, DeepSeek, Grok,
    /// Gemini 2.5 too) or not at all; a plain endpoint never gets the field (OpenAI refuses
    /// content parts it does not know).
    pub fn takes_cache_control(self, model: &str) -> bool {
        self.is_openrouter()
            && (model.starts_with("anthropic/") || model.starts_with("google/gemini"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openrouter_is_the_host_openrouter_ai() {
        for url in [
            "https://openrouter.ai/api/v1",
            "https://openrouter.ai/api/v1/",
            "https://OpenRouter.AI/api/v1",
            "https://openrouter.ai./api/v1",
            "http://openrouter.ai:8080/api/v1",
            "https://eu.openrouter.ai/api/v1",
        ] {
            assert_eq!(Endpoint::of(url), Endpoint::OpenRouter, "{url}");
        }
        for url in [
            "https://api.openai.com/v1",
            "http://127.0.0.1:8080/v1",
            "https://openrouter.ai.example.com/api/v1",
            "https://notopenrouter.ai/api/v1",
            "https://example.com/openrouter.ai/api/v1",
            "https://openrouter.ai@evil.example/api/v1",
            "openrouter.ai/api/v1",
            "",
        ] {
            assert_eq!(Endpoint::of(url), Endpoint::Plain, "{url}");
        }
    }

    #[test]
    fn cache_breakpoints_for_anthropic_and_gemini_through_openrouter_only() {
        let or = Endpoint::OpenRouter;
        for (endpoint, model, takes) in [
            (or, "anthropic/claude-sonnet-4.5", true),
            (or, "anthropic/claude-3.5-haiku:beta", true),
            (or, "google/gemini-2.5-pro", true),
            (or, "google/gemma-3-27b-it", false),
            (or, "openai/gpt-4o", false),
            (or, "deepseek/deepseek-chat", false),
            (or, "openrouter/auto", false),
            (or, "mistralai/mistral-medium-3", false),
            (Endpoint::Plain, "anthropic/claude-sonnet-4.5", false),
            (Endpoint::Plain, "google/gemini-2.5-pro", false),
        ] {
            assert_eq!(
                endpoint.takes_cache_control(model),
                takes,
                "{endpoint:?} {model}"
            );
        }
    }
}
