//! The seven OCSF 1.5.0 classes the mapping uses: uid, name, category, and the captions of
//! the activities, severities and statuses it writes (a caption that differs from the
//! schema's is a validator warning, so they are spelled exactly as OCSF 1.5.0 does).

/// One OCSF class.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Class {
    pub uid: u32,
    pub name: &'static str,
    pub category_uid: u32,
    pub category_name: &'static str,
    /// Every activity the class defines (0 Unknown and 99 Other included).
    pub activities: &'static [(u32, &'static str)],
}

impl Class {
    /// The caption of `activity_id`, if the class defines it.
    pub fn activity(&self, activity_id: u32) -> Option<&'static str> {
        self.activities
            .iter()
            .find(|(id, _)| *id == activity_id)
            .map(|(_, caption)| *caption)
    }

    /// Whether this is a Findings class (its statuses differ).
    pub fn is_finding(&self) -> bool {
        self.category_uid == 2
    }
}

const IAM: (u32, &str) = (3, "Identity & Access Management");

pub const ACCOUNT_CHANGE: Class = Class {
    uid: 3001,
    name: "Account Change",
    category_uid: IAM.0,
    category_name: IAM.1,
    activities: &[
        (0, "Unknown"),
        (1, "Create"),
        (2, "Enable"),
        (3, "Password Change"),
        (4, "Password Reset"),
        (5, "Disable"),
        (6, "Delete"),
        (7, "Attach Policy"),
        (8, "Detach Policy"),
        (9, "Lock"),
        (10, "MFA Factor Enable"),
        (11, "MFA Factor Disable"),
        (12, "Unlock"),
        (99, "Other"),
    ],
};

pub const AUTHENTICATION: Class = Class {
    uid: 3002,
    name: "Authentication",
    category_uid: IAM.0,
    category_name: IAM.1,
    activities: &[
        (0, "Unknown"),
        (1, "Logon"),
        (2, "Logoff"),
        (3, "Authentication Ticket"),
        (4, "Service Ticket Request"),
        (5, "Service Ticket Renew"),
        (6, "Preauth"),
        (99, "Other"),
    ],
};

pub const ENTITY_MANAGEMENT: Class = Class {
    uid: 3004,
    name: "Entity Management",
    category_uid: IAM.0,
    category_name: IAM.1,
    activities: &[
        (0, "Unknown"),
        (1, "Create"),
        (2, "Read"),
        (3, "Update"),
        (4, "Delete"),
        (5, "Move"),
        (6, "Enroll"),
        (7, "Unenroll"),
        (8, "Enable"),
        (9, "Disable"),
        (10, "Activate"),
        (11, "Deactivate"),
        (12, "Suspend"),
        (13, "Resume"),
        (99, "Other"),
    ],
};

pub const USER_ACCESS: Class = Class {
    uid: 3005,
    name: "User Access Management",
    category_uid: IAM.0,
    category_name: IAM.1,
    activities: &[
        (0, "Unknown"),
        (1, "Assign Privileges"),
        (2, "Revoke Privileges"),
        (99, "Other"),
    ],
};

pub const GROUP_MANAGEMENT: Class = Class {
    uid: 3006,
    name: "Group Management",
    category_uid: IAM.0,
    category_name: IAM.1,
    activities: &[
        (0, "Unknown"),
        (1, "Assign Privileges"),
        (2, "Revoke Privileges"),
        (3, "Add User"),
        (4, "Remove User"),
        (5, "Delete"),
        (6, "Create"),
        (99, "Other"),
    ],
};

pub const API_ACTIVITY: Class = Class {
    uid: 6003,
    name: "API Activity",
    category_uid: 6,
    category_name: "Application Activity",
    activities: &[
        (0, "Unknown"),
        (1, "Create"),
        (2, "Read"),
        (3, "Update"),
        (4, "Delete"),
        (99, "Other"),
    ],
};

pub const DETECTION_FINDING: Class = Class {
    uid: 2004,
    name: "Detection Finding",
    category_uid: 2,
    category_name: "Findings",
    activities: &[
        (0, "Unknown"),
        (1, "Create"),
        (2, "Update"),
        (3, "Close"),
        (99, "Other"),
    ],
};

/// Every class the mapping may produce.
pub const CLASSES: [Class; 7] = [
    ACCOUNT_CHANGE,
    AUTHENTICATION,
    ENTITY_MANAGEMENT,
    USER_ACCESS,
    GROUP_MANAGEMENT,
    API_ACTIVITY,
    DETECTION_FINDING,
];

/// The class with `uid`.
pub fn class(uid: u32) -> Option<Class> {
    CLASSES.into_iter().find(|c| c.uid == uid)
}

/// Severity captions (base event).
pub fn severity(severity_id: u32) -> &'static str {
    match severity_id {
        1 => "Informational",
        2 => "Low",
        3 => "Medium",
        4 => "High",
        5 => "Critical",
        6 => "Fatal",
        99 => "Other",
        _ => "Unknown",
    }
}

/// Status captions: the base event's, or the Findings category's own.
pub fn status(class: &Class, status_id: u32) -> &'static str {
    match (class.is_finding(), status_id) {
        (false, 1) => "Success",
        (false, 2) => "Failure",
        (true, 1) => "New",
        (true, 2) => "In Progress",
        (true, 3) => "Suppressed",
        (true, 4) => "Resolved",
        (true, 5) => "Archived",
        (_, 99) => "Other",
        _ => "Unknown",
    }
}
