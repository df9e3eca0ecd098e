//! The simulator's organisation: member accounts, each with its own copy of the fleet, STS
//! `AssumeRole` (awsQuery, XML) into them and Organizations `ListAccounts` /
//! `ListAccountsForParent` (awsJson 1.1) over them.
//!
//! Credentials are bound to an account as AWS binds them: the placeholder keys the gateway
//! starts with belong to the management account ([`fleet::ACCOUNT`]); a key `AssumeRole` hands
//! out carries the account of the role it assumed. DataSync calls are answered from the
//! signing key's account only, so a request sent with the wrong account's client is refused.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{json, Value};

use super::fleet;

/// The organisational unit every member account is in; the management account is at the root.
pub const MEMBERS_OU: &str = "ou-sim0-members";

/// One member of the simulated organisation.
#[derive(Clone, Debug)]
pub struct Account {
    pub id: String,
    pub name: String,
}

#[derive(Debug, Default)]
pub struct Organisation {
    /// Every account, the management account first.
    pub accounts: Vec<Account>,
    /// Accounts whose roles cannot be assumed (a broken trust policy).
    pub denied: BTreeSet<String>,
    /// `AssumeRole` calls granted per account.
    pub assumed: BTreeMap<String, u64>,
    issued: u64,
}

/// The id of the simulator's `n`th account: the seeded fleet's for 0, then 12 digits of their own.
pub fn account_id(n: usize) -> String {
    if n == 0 {
        fleet::ACCOUNT.to_owned()
    } else {
        format!("{:012}", 222_200_000_000 + n as u64)
    }
}

impl Organisation {
    /// The management account and `members - 1` others.
    pub fn new(members: usize) -> Self {
        let accounts = (0..members.max(1))
            .map(|n| Account {
                id: account_id(n),
                name: if n == 0 { "management".to_owned() } else { format!("workload-{n}") },
            })
            .collect();
        Organisation { accounts, ..Organisation::default() }
    }

    /// The account an access key belongs to: the one it was issued for by `AssumeRole`
    /// (`ASIA` + account + serial), else the management account's.
    pub fn account_of_key(key: &str) -> &str {
        match key.strip_prefix("ASIA").and_then(|rest| rest.get(..12)) {
            Some(account) if account.bytes().all(|b| b.is_ascii_digit()) => account,
            _ => fleet::ACCOUNT,
        }
    }

    fn is_member(&self, account: &str) -> bool {
        self.accounts.iter().any(|member| member.id == account)
    }

    /// STS `AssumeRole`, from its form-encoded body: the status and XML to answer with.
    pub fn assume_role(&mut self, body: &[u8], now: DateTime<Utc>) -> (u16, String) {
        #[derive(Deserialize)]
        #[serde(rename_all = "PascalCase")]
        struct Input {
            action: String,
            role_arn: Option<String>,
            role_session_name: Option<String>,
            duration_seconds: Option<i64>,
        }
        let Ok(input) = serde_urlencoded::from_bytes::<Input>(body) else {
            return sts_error(400, "InvalidParameterValue", "the request body is not a form");
        };
        if input.action != "AssumeRole" {
            return sts_error(
                400,
                "InvalidAction",
                &format!("the simulator does not implement {}", input.action),
            );
        }
        let (Some(role_arn), Some(session)) = (input.role_arn, input.role_session_name) else {
            return sts_error(400, "ValidationError", "RoleArn and RoleSessionName are required");
        };
        let account = role_arn
            .strip_prefix("arn:aws:iam::")
            .and_then(|rest| rest.split_once(":role/"))
            .map(|(account, _)| account.to_owned());
        let Some(account) = account.filter(|account| self.is_member(account)) else {
            return sts_error(
                403,
                "AccessDenied",
                &format!("Not authorized to perform sts:AssumeRole on {role_arn}"),
            );
        };
        if self.denied.contains(&account) {
            return sts_error(
                403,
                "AccessDenied",
                &format!("Not authorized to perform sts:AssumeRole on {role_arn}"),
            );
        }
        self.issued += 1;
        *self.assumed.entry(account.clone()).or_default() += 1;
        let key = format!("ASIA{account}{:04X}", self.issued % 0x10000);
        let expires =
            now + chrono::Duration::seconds(input.duration_seconds.unwrap_or(3600).clamp(900, 43_200));
        let role_name = role_arn.rsplit('/').next().unwrap_or_default();
        let xml = format!(
            "<AssumeRoleResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><AssumeRoleResult>\
             <AssumedRoleUser><Arn>arn:aws:sts::{account}:assumed-role/{role_name}/{session}</Arn>\
             <AssumedRoleId>AROASIMULATED{account}:{session}</AssumedRoleId></AssumedRoleUser>\
             <Credentials><AccessKeyId>{key}</AccessKeyId><SecretAccessKey>simulated-secret</SecretAccessKey>\
             <SessionToken>simulated-session-{issued}</SessionToken><Expiration>{expiration}</Expiration></Credentials>\
             </AssumeRoleResult><ResponseMetadata><RequestId>simulated-{issued}</RequestId></ResponseMetadata>\
             </AssumeRoleResponse>",
            issued = self.issued,
            expiration = expires.format("%Y-%m-%dT%H:%M:%SZ"),
        );
        (200, xml)
    }

    /// An Organizations operation signed by `account`: its output, or the error's type and message.
    pub fn organizations(
        &self,
        account: &str,
        operation: &str,
        input: &Value,
        now: DateTime<Utc>,
    ) -> Result<Value, (&'static str, String)> {
        if account != fleet::ACCOUNT {
            return Err((
                "AccessDeniedException",
                "You don't have permissions to access this resource: only the management account may".into(),
            ));
        }
        let members: Vec<&Account> = match operation {
            "ListAccounts" => self.accounts.iter().collect(),
            "ListAccountsForParent" => match input.get("ParentId").and_then(Value::as_str) {
                Some(MEMBERS_OU) => self.accounts.iter().skip(1).collect(),
                Some(parent) if parent.starts_with("r-") => self.accounts.iter().take(1).collect(),
                _ => return Err(("ParentNotFoundException", "no such organizational unit".into())),
            },
            _ => {
                return Err((
                    "UnknownOperationException",
                    format!("the simulator does not implement {operation}"),
                ))
            }
        };
        let start: usize = match input.get("NextToken").and_then(Value::as_str) {
            Some(token) => {
                token.parse().map_err(|_| ("InvalidInputException", "NextToken is not valid".into()))?
            }
            None => 0,
        };
        let max = input.get("MaxResults").and_then(Value::as_u64).unwrap_or(20).clamp(1, 20) as usize;
        let joined = fleet::epoch_seconds(now - chrono::Duration::days(400));
        let page: Vec<Value> = members
            .iter()
            .skip(start)
            .take(max)
            .map(|member| {
                json!({
                    "Id": member.id,
                    "Arn": format!("arn:aws:organizations::{}:account/o-simulated/{}", fleet::ACCOUNT, member.id),
                    "Email": format!("{}@example.com", member.name),
                    "Name": member.name,
                    "Status": "ACTIVE",
                    "State": "ACTIVE",
                    "JoinedMethod": if member.id == fleet::ACCOUNT { "CREATED" } else { "INVITED" },
                    "JoinedTimestamp": joined,
                })
            })
            .collect();
        let mut output = json!({ "Accounts": page });
        if start + max < members.len() {
            output["NextToken"] = json!((start + max).to_string());
        }
        Ok(output)
    }
}

/// An STS error in awsQuery's XML shape.
fn sts_error(status: u16, code: &str, message: &str) -> (u16, String) {
    let kind = if status >= 500 { "Receiver" } else { "Sender" };
    let xml = format!(
        "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><Error><Type>{kind}</Type>\
         <Code>{code}</Code><Message>{}</Message></Error><RequestId>simulated</RequestId></ErrorResponse>",
        message.replace('&', "&amp;").replace('<', "&lt;")
    );
    (status, xml)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_from_assume_role_belongs_to_the_role_s_account_and_others_to_the_management_account() {
        let mut organisation = Organisation::new(3);
        let member = account_id(2);
        let body = format!("Action=AssumeRole&Version=2011-06-15&RoleArn=arn%3Aaws%3Aiam%3A%3A{member}%3Arole%2Freader&RoleSessionName=gw");
        let (status, xml) = organisation.assume_role(body.as_bytes(), Utc::now());
        assert_eq!(status, 200, "{xml}");
        let key = xml.split("<AccessKeyId>").nth(1).and_then(|rest| rest.split('<').next()).unwrap();
        assert_eq!(Organisation::account_of_key(key), member);
        assert_eq!(Organisation::account_of_key("AKIDGATEWAYTEST"), fleet::ACCOUNT);
        assert_eq!(organisation.assumed.get(&member), Some(&1));

        organisation.denied.insert(member.clone());
        assert_eq!(organisation.assume_role(body.as_bytes(), Utc::now()).0, 403);
        let outsider = body.replace(&member, "999999999999");
        assert_eq!(organisation.assume_role(outsider.as_bytes(), Utc::now()).0, 403);
    }

    #[test]
    fn list_accounts_pages_through_every_member_and_only_for_the_management_account() {
        let organisation = Organisation::new(25);
        let first =
            organisation.organizations(fleet::ACCOUNT, "ListAccounts", &json!({}), Utc::now()).unwrap();
        assert_eq!(first["Accounts"].as_array().unwrap().len(), 20);
        let next = json!({ "NextToken": first["NextToken"] });
        let second = organisation.organizations(fleet::ACCOUNT, "ListAccounts", &next, Utc::now()).unwrap();
        assert_eq!(second["Accounts"].as_array().unwrap().len(), 5);
        assert!(second.get("NextToken").is_none());
        let members = json!({ "ParentId": MEMBERS_OU });
        let listed = organisation
            .organizations(fleet::ACCOUNT, "ListAccountsForParent", &members, Utc::now())
            .unwrap();
        assert!(listed["Accounts"].as_array().unwrap().iter().all(|a| a["Id"] != fleet::ACCOUNT));
        assert!(organisation.organizations(&account_id(1), "ListAccounts", &json!({}), Utc::now()).is_err());
    }
}
