//! The requests that give access beyond Azure roles, against answers shaped as the documentation shows them:
//! Dataverse's `systemusers` with `$expand=systemuserroles_association`, `roles`, `businessunits` and the
//! `$ref` association (Learn, "Associate and disassociate table rows using the Web API"); Microsoft Graph's
//! service principal with `appRoles` and `oauth2PermissionScopes`, and `appRoleAssignments` (Graph v1.0
//! reference, "List appRoleAssignments granted to a service principal", "Grant an appRoleAssignment to a service
//! principal").

mod common;

use common::{catch_all, dataverse, json, options, token};
use dataverse_mi::clients::dataverse::requests as dv;
use dataverse_mi::clients::graph::requests as graph;
use dataverse_mi::clients::{ClientOptions, GraphClient, MICROSOFT_GRAPH_APP_ID};
use dataverse_mi::cloud::{Cloud, CloudProfile};
use serde_json::json;
use uuid::Uuid;
use wiremock::matchers::{body_json, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

const API: &str = "/api/data/v9.2";
const APP: Uuid = Uuid::from_u128(0x0b5a7d2c_6f4e_4d3a_9c1b_2a8e7f6d5c4b);
const USER: Uuid = Uuid::from_u128(0x8a1c0f4e_2b3d_4e5f_9a0b_1c2d3e4f5a6b);
const ROOT: Uuid = Uuid::from_u128(0x5b0f1c2d_3e4f_4a5b_8c6d_7e8f9a0b1c2d);
const ROLE: Uuid = Uuid::from_u128(0x1d2e3f4a_5b6c_4d7e_8f9a_0b1c2d3e4f5a);

#[tokio::test]
async fn an_application_user_with_its_roles_the_root_business_unit_and_roles_by_name() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(format!("{API}/systemusers")))
        .and(query_param("$filter", format!("applicationid eq {APP}")))
        .and(query_param("$expand", "systemuserroles_association($select=roleid,name,_businessunitid_value)"))
        .respond_with(json(json!({
            "@odata.context": "https://contoso.crm.dynamics.com/api/data/v9.2/$metadata#systemusers(systemuserid,applicationid,isdisabled,_businessunitid_value,systemuserroles_association(roleid,name,_businessunitid_value))",
            "value": [{
                "@odata.etag": "W/\"4567123\"",
                "systemuserid": USER,
                "applicationid": APP,
                "isdisabled": false,
                "_businessunitid_value": ROOT,
                "systemuserroles_association": [
                    {"@odata.etag": "W/\"1170\"", "roleid": ROLE, "name": "Basic User", "_businessunitid_value": ROOT}
                ]
            }]
        })))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("{API}/businessunits")))
        .and(query_param("$filter", "_parentbusinessunitid_value eq null"))
        .respond_with(json(json!({
            "@odata.context": "https://contoso.crm.dynamics.com/api/data/v9.2/$metadata#businessunits(businessunitid)",
            "value": [{"@odata.etag": "W/\"1019\"", "businessunitid": ROOT}]
        })))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("{API}/roles")))
        .and(query_param("$filter", "name eq 'Basic User' or name eq 'O''Neil Reader'"))
        .respond_with(json(json!({
            "@odata.context": "https://contoso.crm.dynamics.com/api/data/v9.2/$metadata#roles(roleid,name,_businessunitid_value)",
            "value": [
                {"@odata.etag": "W/\"1170\"", "roleid": ROLE, "name": "Basic User", "_businessunitid_value": ROOT},
                {"@odata.etag": "W/\"1171\"", "roleid": Uuid::nil(), "name": "Basic User", "_businessunitid_value": Uuid::from_u128(7)}
            ]
        })))
        .mount(&server)
        .await;
    catch_all(&server).await;
    let client = dataverse(&server);
    let users = client.send(dv::application_users(APP)).await.unwrap();
    assert_eq!((users[0].id, users[0].application_id, users[0].business_unit), (USER, Some(APP), Some(ROOT)));
    assert_eq!(users[0].roles.iter().map(|r| (r.id, r.name.as_str())).collect::<Vec<_>>(), [(ROLE, "Basic User")]);
    assert_eq!(client.send(dv::root_business_units()).await.unwrap()[0].id, ROOT);
    let roles = client.send(dv::security_roles_named(&["Basic User", "O'Neil Reader"])).await.unwrap();
    assert_eq!(roles.len(), 2, "every business unit's copy");
    assert!(client.send(dv::security_roles_named(&[])).await.is_err(), "no names is refused before sending");
}

#[tokio::test]
async fn an_application_user_is_made_and_given_and_taken_a_role() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(format!("{API}/systemusers")))
        .and(body_json(json!({"systemuserid": USER, "applicationid": APP, "businessunitid@odata.bind": format!("/businessunits({ROOT})")})))
        .respond_with(
            ResponseTemplate::new(204)
                .insert_header("OData-EntityId", format!("https://contoso.crm.dynamics.com{API}/systemusers({USER})")),
        )
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(format!("{API}/systemusers({USER})/systemuserroles_association/$ref")))
        .and(body_json(json!({"@odata.id": format!("https://contoso.crm.dynamics.com/api/data/v9.2/roles({ROLE})")})))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("DELETE"))
        .and(path(format!("{API}/systemusers({USER})/systemuserroles_association({ROLE})/$ref")))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&server)
        .await;
    catch_all(&server).await;
    let client = dataverse(&server);
    client.send(dv::create_application_user(USER, APP, ROOT)).await.unwrap();
    client.send(dv::add_security_role("https://contoso.crm.dynamics.com/", USER, ROLE)).await.unwrap();
    client.send(dv::remove_security_role(USER, ROLE)).await.unwrap();
}

fn graph_client(server: &MockServer) -> GraphClient {
    let base = format!("{}/v1.0/", server.uri()).parse().unwrap();
    GraphClient::new(&CloudProfile::from(Cloud::Public), token(), ClientOptions { base_url: Some(base), ..options() })
        .unwrap()
}

const SP: Uuid = Uuid::from_u128(0x9028d19c_26a9_4809_8e3f_20ff73e2d75e);
const GRAPH_SP: Uuid = Uuid::from_u128(0x8e881353_1735_45af_af21_ee1344582a4d);
const MAIL_SEND: Uuid = Uuid::from_u128(0xb633e1c5_b582_4048_a93e_9f11b44c7e96);

fn assignment() -> serde_json::Value {
    json!({
        "id": "nNEokBcjUk2kkGyvuHQ7JNIsbKZ_tSlGpRBb4eeSWBc",
        "deletedDateTime": null,
        "appRoleId": MAIL_SEND,
        "createdDateTime": "2026-11-15T16:39:38.2975029Z",
        "principalDisplayName": "Contoso plug-ins",
        "principalId": SP,
        "principalType": "ServicePrincipal",
        "resourceDisplayName": "Microsoft Graph",
        "resourceId": GRAPH_SP
    })
}

#[tokio::test]
async fn graphs_service_principal_with_its_permissions_and_app_role_assignments() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(format!("/v1.0/servicePrincipals(appId='{MICROSOFT_GRAPH_APP_ID}')")))
        .and(query_param("$select", "id,appId,displayName,appRoles,oauth2PermissionScopes"))
        .respond_with(json(json!({
            "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#servicePrincipals(id,appId,displayName,appRoles,oauth2PermissionScopes)/$entity",
            "id": GRAPH_SP,
            "appId": MICROSOFT_GRAPH_APP_ID,
            "displayName": "Microsoft Graph",
            "appRoles": [{
                "allowedMemberTypes": ["Application"],
                "description": "Allows the app to send mail as any user without a signed-in user.",
                "displayName": "Send mail as any user",
                "id": MAIL_SEND,
                "isEnabled": true,
                "origin": "Application",
                "value": "Mail.Send"
            }],
            "oauth2PermissionScopes": [{
                "adminConsentDescription": "Allows users to sign-in to the app, and allows the app to read the profile of signed-in users.",
                "adminConsentDisplayName": "Sign in and read user profile",
                "id": "e1fe6dd8-ba31-4d61-89e7-88639da4683d",
                "isEnabled": true,
                "type": "User",
                "userConsentDescription": "Allows you to sign in to the app with your organizational account and let the app read your profile.",
                "userConsentDisplayName": "Sign in and read your profile",
                "value": "User.Read"
            }]
        })))
        .mount(&server)
        .await;
    let assignments = format!("/v1.0/servicePrincipals/{SP}/appRoleAssignments");
    Mock::given(method("GET"))
        .and(path(&assignments))
        .respond_with(json(json!({
            "@odata.context": format!("https://graph.microsoft.com/v1.0/$metadata#servicePrincipals('{SP}')/appRoleAssignments"),
            "value": [assignment()]
        })))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(&assignments))
        .and(body_json(json!({"principalId": SP, "resourceId": GRAPH_SP, "appRoleId": MAIL_SEND})))
        .respond_with(ResponseTemplate::new(201).set_body_json(assignment()))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("DELETE"))
        .and(path(format!("{assignments}/nNEokBcjUk2kkGyvuHQ7JNIsbKZ_tSlGpRBb4eeSWBc")))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&server)
        .await;
    catch_all(&server).await;
    let client = graph_client(&server);
    let sp = client.send(graph::resource_service_principal(MICROSOFT_GRAPH_APP_ID)).await.unwrap();
    assert_eq!((sp.id, sp.display_name.as_deref()), (GRAPH_SP, Some("Microsoft Graph")));
    assert!(sp.app_roles[0].is_application_permission());
    assert_eq!(sp.app_roles[0].value.as_deref(), Some("Mail.Send"));
    assert_eq!(sp.oauth2_permission_scopes[0].value.as_deref(), Some("User.Read"));
    let listed = client.send(graph::app_role_assignments(SP)).await.unwrap();
    assert_eq!((listed[0].app_role_id, listed[0].resource_id, listed[0].principal_id), (MAIL_SEND, GRAPH_SP, SP));
    let made = client.send(graph::assign_app_role(SP, GRAPH_SP, MAIL_SEND)).await.unwrap();
    assert_eq!(made.id, "nNEokBcjUk2kkGyvuHQ7JNIsbKZ_tSlGpRBb4eeSWBc");
    client.send(graph::remove_app_role_assignment(SP, &made.id)).await.unwrap();
}
