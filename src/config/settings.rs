//! The file's settings tables, each checked on its own: `[policy]` (the routing weights
//! and knobs), `[limits]` (bounds on input and connections), `[auth]` (tokens by role) and
//! `[alerts]`. A table or key left out takes its default; a value out of bounds is
//! reported, and a file with any problem gives no network.

use super::check::Checker;
use super::raw::RawConfig;
use super::{Alerts, Auth, Limits, Policy, Role};

impl Checker<'_> {
    /// `[policy]`'s review keys: approvals needed, the timeout and what it does.
    fn review(&mut self, raw: &super::raw::RawPolicy, policy: &mut Policy) {
        if let Some(value) = &raw.review_approvals {
            policy.review_approvals =
                self.integer(value, "policy.review_approvals".into(), 1..6) as u32;
        }
        if let Some(value) = &raw.review_timeout_s {
            let range = 0..30 * 86_400 + 1;
            policy.review_timeout_s =
                self.integer(value, "policy.review_timeout_s".into(), range) as u64;
        }
        if let Some(action) = &raw.review_timeout_action {
            match action.get_ref().as_str() {
                "reject" => policy.review_timeout_rejects = true,
                "approve" => policy.review_timeout_rejects = false,
                other => {
                    let message = format!("must be \"reject\" or \"approve\", got \"{other}\"");
                    self.report(action.span(), "policy.review_timeout_action", message);
                }
            }
        }
    }

    /// `[policy]`: the routing weights and knobs, defaults for the keys left out.
    pub(super) fn policy(&mut self, raw: &RawConfig) -> Policy {
        let mut policy = Policy::default();
        let Some(raw) = &raw.policy else {
            return policy;
        };
        for (value, target, name) in [
            (
                &raw.distance_weight,
                &mut policy.distance_weight,
                "distance_weight",
            ),
            (&raw.cost_weight, &mut policy.cost_weight, "cost_weight"),
            (&raw.split_weight, &mut policy.split_weight, "split_weight"),
            (&raw.load_weight, &mut policy.load_weight, "load_weight"),
            (&raw.rank_weight, &mut policy.rank_weight, "rank_weight"),
            (
                &raw.hold_order_value_over,
                &mut policy.hold_order_value_over,
                "hold_order_value_over",
            ),
        ] {
            if let Some(value) = value {
                *target = self.non_negative(value, format!("policy.{name}"), false);
            }
        }
        if let Some(value) = &raw.max_shipments {
            let range = 1..i64::from(crate::limits::MAX_SHIPMENTS) + 1;
            policy.max_shipments = self.integer(value, "policy.max_shipments".into(), range) as u32;
        }
        if let Some(value) = &raw.split_candidates {
            let range = 2..i64::from(crate::limits::MAX_SPLIT_CANDIDATES) + 1;
            policy.split_candidates =
                self.integer(value, "policy.split_candidates".into(), range) as u32;
        }
        if let Some(backorder) = raw.backorder {
            policy.backorder = backorder;
        }
        self.review(raw, &mut policy);
        if let Some(split) = &raw.default_split {
            match split.get_ref().as_str() {
                "allow" => policy.default_split = true,
                "forbid" => policy.default_split = false,
                other => {
                    let message = format!("must be \"allow\" or \"forbid\", got \"{other}\"");
                    self.report(split.span(), "policy.default_split", message);
                }
            }
        }
        if let Some(tags) = &raw.hold_tags {
            policy.hold_tags = tags.clone();
        }
        policy
    }

    /// `[alerts]`: the bottleneck share, a share above 0 and at most 1.
    pub(super) fn alerts(&mut self, raw: &RawConfig) -> Alerts {
        let mut alerts = Alerts::default();
        if let Some(share) = raw
            .alerts
            .as_ref()
            .and_then(|raw| raw.bottleneck_share.as_ref())
        {
            let value = *share.get_ref();
            if value.is_finite() && value > 0.0 && value <= 1.0 {
                alerts.bottleneck_share = value;
            } else {
                self.report(
                    share.span(),
                    "alerts.bottleneck_share",
                    format!("must be a share above 0 and at most 1, got {value}"),
                );
            }
        }
        alerts
    }

    /// `[auth]`: the tokens of each role; a token too short to be a secret is refused.
    pub(super) fn auth(&mut self, raw: &RawConfig) -> Auth {
        let mut auth = Auth::default();
        let Some(raw) = &raw.auth else {
            return auth;
        };
        for (key, tokens, role) in [
            ("auth.read_tokens", &raw.read_tokens, Role::Read),
            ("auth.ingest_tokens", &raw.ingest_tokens, Role::Ingest),
            ("auth.ops_tokens", &raw.ops_tokens, Role::Ops),
        ] {
            for (index, token) in tokens.iter().enumerate() {
                let text = token.get_ref();
                if text.len() < 16 || !text.bytes().all(|byte| byte.is_ascii_graphic()) {
                    self.report(
                        token.span(),
                        format!("{key}[{index}]"),
                        "a token must be at least 16 printable ASCII characters, no spaces",
                    );
                    continue;
                }
                auth.tokens.push((text.clone(), role));
            }
        }
        auth
    }

    /// `[limits]`: each bound within its range; `priority_reserve` below
    /// `max_orders_in_flight` (by default, at most half of it).
    pub(super) fn limits(&mut self, raw: &RawConfig) -> Limits {
        let mut limits = Limits::default();
        let Some(raw) = &raw.limits else {
            return limits;
        };
        if let Some(value) = &raw.max_line_bytes {
            let range = 256..(16 << 20) + 1;
            limits.max_line_bytes =
                self.integer(value, "limits.max_line_bytes".into(), range) as usize;
        }
        if let Some(value) = &raw.max_lines_per_order {
            let range = 1..10_001;
            limits.max_lines_per_order =
                self.integer(value, "limits.max_lines_per_order".into(), range) as usize;
        }
        if let Some(value) = &raw.max_streams {
            let range = 1..1_000_001;
            limits.max_streams = self.integer(value, "limits.max_streams".into(), range) as usize;
        }
        if let Some(value) = &raw.max_orders_in_flight {
            let range = 1..100_000_001;
            limits.max_orders_in_flight =
                self.integer(value, "limits.max_orders_in_flight".into(), range) as usize;
        }
        if let Some(value) = &raw.header_timeout_ms {
            limits.header_timeout_ms =
                self.integer(value, "limits.header_timeout_ms".into(), 1000..600_001) as u64;
        }
        if let Some(value) = &raw.idle_timeout_s {
            limits.idle_timeout_s =
                self.integer(value, "limits.idle_timeout_s".into(), 1..86_401) as u64;
        }
        if let Some(value) = &raw.body_idle_timeout_ms {
            limits.body_idle_timeout_ms =
                self.integer(value, "limits.body_idle_timeout_ms".into(), 100..3_600_001) as u64;
        }
        if let Some(value) = &raw.write_stall_timeout_ms {
            limits.write_stall_timeout_ms = self.integer(
                value,
                "limits.write_stall_timeout_ms".into(),
                1000..3_600_001,
            ) as u64;
        }
        if let Some(value) = &raw.max_connections {
            limits.max_connections =
                self.integer(value, "limits.max_connections".into(), 1..1_000_001) as usize;
        }
        if let Some(value) = &raw.receive_buffer_bytes {
            let range = 0..(1 << 30) + 1;
            limits.receive_buffer_bytes =
                self.integer(value, "limits.receive_buffer_bytes".into(), range) as usize;
        }
        if let Some(value) = &raw.priority_reserve {
            let range = 0..limits.max_orders_in_flight as i64;
            limits.priority_reserve =
                self.integer(value, "limits.priority_reserve".into(), range) as usize;
        } else {
            limits.priority_reserve = limits.priority_reserve.min(limits.max_orders_in_flight / 2);
        }
        limits
    }
}
