//! The API permissions the operator uses, and no others. `deploy/operator.yaml` and the Helm
//! chart grant exactly these (a test compares them), so a new watch or write cannot ship without
//! its permission, and a permission nothing uses cannot linger.

/// One rule: API group, resources, verbs (each sorted as written in the manifests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    pub group: &'static str,
    pub resources: &'static [&'static str],
    pub verbs: &'static [&'static str],
}

/// The rules in every namespace the operator watches.
pub const NAMESPACED: &[Rule] = &[
    // Both controllers list and watch their resources; nothing GETs them one by one.
    Rule {
        group: "hex-core.dev",
        resources: &["modelcatalogs", "hexcoreservices"],
        verbs: &["list", "watch"],
    },
    // Status is written by server-side apply.
    Rule {
        group: "hex-core.dev",
        resources: &["modelcatalogs/status", "hexcoreservices/status"],
        verbs: &["patch"],
    },
    // Children: watched into reflector stores (list, watch) and server-side applied (patch;
    // create when the object does not exist yet).
    Rule {
        group: "",
        resources: &["configmaps", "services", "persistentvolumeclaims"],
        verbs: &["list", "watch", "create", "patch"],
    },
    // Secrets: watched as metadata only (list, watch), the referenced ones read one by one (get),
    // the generated admin token created once (create). Never listed with their content.
    Rule {
        group: "",
        resources: &["secrets"],
        verbs: &["get", "list", "watch", "create"],
    },
    // The pods of HexCoreServices: why they do not run.
    Rule {
        group: "",
        resources: &["pods"],
        verbs: &["list", "watch"],
    },
    Rule {
        group: "apps",
        resources: &["deployments"],
        verbs: &["list", "watch", "create", "patch"],
    },
    Rule {
        group: "policy",
        resources: &["poddisruptionbudgets"],
        verbs: &["list", "watch", "create", "patch", "delete"],
    },
    // The replicas' addresses.
    Rule {
        group: "discovery.k8s.io",
        resources: &["endpointslices"],
        verbs: &["list", "watch"],
    },
    Rule {
        group: "events.k8s.io",
        resources: &["events"],
        verbs: &["create", "patch"],
    },
];

/// The rule in the namespace of the leader Lease.
pub const LEADER_ELECTION: Rule = Rule {
    group: "coordination.k8s.io",
    resources: &["leases"],
    verbs: &["get", "create", "update"],
};
