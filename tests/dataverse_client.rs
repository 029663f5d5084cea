//! The Dataverse client against wiremock: every method, paging, errors, retries.

mod common;

use common::{TOKEN, catch_all, dataverse, json};
use dataverse_mi::clients::{ApiError, ComponentKind, ManagedIdentityUpdate, OrgUrl};
use dataverse_mi::entities::NewManagedIdentity;
use dataverse_mi::subject::SubjectFormatVersion;
use serde_json::json;
use uuid::Uuid;
use wiremock::matchers::{body_json, header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

const API: &str = "/api/data/v9.2";
const MI: Uuid = Uuid::from_u128(0x0d1f3d4e_0000_5000_8000_000000000001);
const ASM: Uuid = Uuid::from_u128(0x11111111_1111_1111_1111_111111111111);

fn mi_row() -> serde_json::Value {
    json!({
        "@odata.etag": "W/\"1\"",
        "managedidentityid": MI.to_string(),
        "name": "dataverse-mi 00000000-0000-0000-0000-000000000001",
        "applicationid": "00000000-0000-0000-0000-000000000001",
        "tenantid": "72f988bf-86f1-41af-91ab-2d7cd011db47",
        "credentialsource": 2,
        "subjectscope": 1,
        "version": 2
    })
}

#[tokio::test]
async fn retrieve_current_organization_and_who_am_i() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(format!("{API}/RetrieveCurrentOrganization(AccessType=Microsoft.Dynamics.CRM.EndpointAccessType'Default')")))
        .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
        .and(header("odata-version", "4.0"))
        .and(header("odata-maxversion", "4.0"))
        .and(header("accept", "application/json"))
        .respond_with(json(json!({
            "@odata.context": "https://contoso.crm.dynamics.com/api/data/v9.2/$metadata#Microsoft.Dynamics.CRM.RetrieveCurrentOrganizationResponse",
            "Detail": {
                "OrganizationId": "0b1d2a3c-0000-0000-0000-000000000001",
                "FriendlyName": "Contoso", "UniqueName": "unq1", "UrlName": "contoso", "Geo": "NA",
                "EnvironmentId": "7efcc31a-c410-e20e-9b3c-3ea55e7f9c56",
                "TenantId": "72f988bf-86f1-41af-91ab-2d7cd011db47",
                "OrganizationType": "Customer", "State": "Enabled", "OrganizationVersion": "9.2.25093.00176",
                "Endpoints": {"Count": 1, "IsReadOnly": false, "Keys": ["WebApplication"], "Values": ["https://contoso.crm.dynamics.com/"]}
            }
        })))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("{API}/WhoAmI")))
        .respond_with(json(json!({
            "@odata.context": "x",
            "BusinessUnitId": "00000000-0000-0000-0000-00000000000b",
            "UserId": "00000000-0000-0000-0000-00000000000a",
            "OrganizationId": "0b1d2a3c-0000-0000-0000-000000000001"
        })))
        .mount(&server)
        .await;
    catch_all(&server).await;
    let client = dataverse(&server);
    let org = client.retrieve_current_organization().await.unwrap();
    assert_eq!(org.environment_id.unwrap().to_string(), "7efcc31a-c410-e20e-9b3c-3ea55e7f9c56");
    assert_eq!(org.tenant_id.unwrap().to_string(), "72f988bf-86f1-41af-91ab-2d7cd011db47");
    assert_eq!(org.extra["State"], "Enabled");
    let me = client.who_am_i().await.unwrap();
    assert_eq!(me.user_id, Uuid::from_u128(0xa));
    assert_eq!(client.scope(), format!("{}/.default", server.uri()));
}

/// A tenant's Default environment: `EnvironmentId` is `Default-{tenant}` (an `Edm.String`; PowerApps-Samples'
/// `OrganizationDetail.cs`). The whole call used to fail to decode ("is not a GUID").
#[tokio::test]
async fn retrieve_current_organization_of_the_default_environment() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(format!("{API}/RetrieveCurrentOrganization(AccessType=Microsoft.Dynamics.CRM.EndpointAccessType'Default')")))
        .respond_with(json(json!({
            "@odata.context": "https://orgdefault.crm.dynamics.com/api/data/v9.2/$metadata#Microsoft.Dynamics.CRM.RetrieveCurrentOrganizationResponse",
            "Detail": {
                "OrganizationId": "0b1d2a3c-0000-0000-0000-000000000002",
                "FriendlyName": "Contoso (default)", "UniqueName": "unqdefault", "UrlName": "orgdefault", "Geo": "NA",
                "EnvironmentId": "Default-72f988bf-86f1-41af-91ab-2d7cd011db47",
                "TenantId": "72f988bf-86f1-41af-91ab-2d7cd011db47",
                "OrganizationType": "Customer", "State": "Enabled", "OrganizationVersion": "9.2.26113.00180",
                "Endpoints": {"Count": 1, "IsReadOnly": false, "Keys": ["WebApplication"], "Values": ["https://orgdefault.crm.dynamics.com/"]}
            }
        })))
        .mount(&server)
        .await;
    catch_all(&server).await;
    let org = dataverse(&server).retrieve_current_organization().await.unwrap();
    let env = org.environment_id.unwrap();
    assert_eq!(env, dataverse_mi::environment::EnvironmentId::Default { tenant: org.tenant_id.unwrap() });
    assert_eq!(env.to_string(), "Default-72f988bf-86f1-41af-91ab-2d7cd011db47");
}

#[tokio::test]
async fn create_managed_identity_with_client_chosen_id() {
    let server = MockServer::start().await;
    let row = NewManagedIdentity::for_plugins(
        Uuid::from_u128(1),
        Uuid::parse_str("72f988bf-86f1-41af-91ab-2d7cd011db47").unwrap(),
        Uuid::from_u128(3),
        SubjectFormatVersion::V2,
    );
    Mock::given(method("POST"))
        .and(path(format!("{API}/managedidentities")))
        .and(header("prefer", "return=representation"))
        .and(header("content-type", "application/json"))
        .and(body_json(serde_json::to_value(&row).unwrap()))
        .respond_with(ResponseTemplate::new(201).set_body_json(mi_row()))
        .expect(1)
        .mount(&server)
        .await;
    catch_all(&server).await;
    let created = dataverse(&server).create_managed_identity(&row).await.unwrap();
    let stored = created.row.unwrap();
    assert_eq!(stored.id, MI);
    assert_eq!(stored.version, Some(2));
    assert_eq!(created.id, None);
}

/// The Web API may answer a create with `204 No Content` and the new row's URL in `OData-EntityId` (Learn,
/// "Create a table row using the Web API": without a representation in the answer).
#[tokio::test]
async fn create_answered_204_takes_the_id_from_odata_entityid() {
    let server = MockServer::start().await;
    let row = NewManagedIdentity::for_plugins(
        Uuid::from_u128(1),
        Uuid::from_u128(2),
        Uuid::from_u128(3),
        SubjectFormatVersion::V2,
    );
    Mock::given(method("POST"))
        .and(path(format!("{API}/managedidentities")))
        .respond_with(ResponseTemplate::new(204).insert_header("OData-Version", "4.0").insert_header(
            "OData-EntityId",
            format!("https://contoso.crm.dynamics.com/api/data/v9.2/managedidentities({})", row.id).as_str(),
        ))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(format!("{API}/managedidentities")))
        .respond_with(ResponseTemplate::new(204))
        .mount(&server)
        .await;
    let created = dataverse(&server).create_managed_identity(&row).await.unwrap();
    assert_eq!(created.id, Some(row.id));
    assert!(created.row.is_none());
    // Neither a body nor the header: a typed error that names what is missing, not a JSON decode failure.
    let err = dataverse(&server).create_managed_identity(&row).await.unwrap_err();
    assert!(err.to_string().contains("OData-EntityId"), "{err}");
}

#[tokio::test]
async fn duplicate_create_is_a_conflict_with_the_service_code() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(format!("{API}/managedidentities")))
        .respond_with(ResponseTemplate::new(412).insert_header("x-ms-service-request-id", "abc").set_body_json(json!({
            "error": {"code": "0x80040237", "message": "A record with matching key values already exists."}
        })))
        .mount(&server)
        .await;
    let row = NewManagedIdentity::for_plugins(
        Uuid::from_u128(1),
        Uuid::from_u128(2),
        Uuid::from_u128(3),
        SubjectFormatVersion::V2,
    );
    let err = dataverse(&server).create_managed_identity(&row).await.unwrap_err();
    assert!(err.is_conflict());
    assert_eq!(err.service_code(), Some("0x80040237"));
    assert_eq!(err.status().map(|s| s.as_u16()), Some(412));
    assert!(err.to_string().contains("matching key values"), "{err}");
    // Dataverse names its request id x-ms-service-request-id.
    assert_eq!(err.request_id(), Some("abc"));
}

#[tokio::test]
async fn get_update_delete_managed_identity() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(format!("{API}/managedidentities({MI})")))
        .and(query_param("$select", "managedidentityid,name,applicationid,tenantid,credentialsource,subjectscope,version,identitytype,statecode"))
        .respond_with(json(mi_row()))
        .mount(&server)
        .await;
    Mock::given(method("PATCH"))
        .and(path(format!("{API}/managedidentities({MI})")))
        .and(header("if-match", "*"))
        .and(body_json(json!({"version": 2, "applicationid": "00000000-0000-0000-0000-000000000009"})))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("DELETE"))
        .and(path(format!("{API}/managedidentities({MI})")))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&server)
        .await;
    catch_all(&server).await;
    let client = dataverse(&server);
    assert_eq!(client.get_managed_identity(MI).await.unwrap().id, MI);
    let update = ManagedIdentityUpdate {
        version: Some(SubjectFormatVersion::V2),
        application_id: Some(Uuid::from_u128(9)),
        ..Default::default()
    };
    client.update_managed_identity(MI, &update).await.unwrap();
    client.delete_managed_identity(MI).await.unwrap();
}

#[tokio::test]
async fn not_found_is_typed() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(404).set_body_json(json!({
            "error": {"code": "0x80040217", "message": "managedidentity With Ids = 0d1f3d4e Do Not Exist"}
        })))
        .mount(&server)
        .await;
    let err = dataverse(&server).get_managed_identity(MI).await.unwrap_err();
    assert!(err.is_not_found());
    assert!(!err.is_conflict());
    assert_eq!(err.service_code(), Some("0x80040217"));
}

#[tokio::test]
async fn list_follows_next_links_with_a_filter() {
    let server = MockServer::start().await;
    let next = format!("{}{API}/managedidentities?$skiptoken=page2", server.uri());
    Mock::given(method("GET"))
        .and(path(format!("{API}/managedidentities")))
        .and(query_param("$filter", "applicationid eq 00000000-0000-0000-0000-000000000001"))
        .and(header("prefer", "odata.maxpagesize=500"))
        .respond_with(json(json!({"value": [mi_row()], "@odata.nextLink": next})))
        .expect(1)
        .mount(&server)
        .await;
    let mut second = mi_row();
    second["managedidentityid"] = json!("0d1f3d4e-0000-5000-8000-000000000002");
    Mock::given(method("GET"))
        .and(path(format!("{API}/managedidentities")))
        .and(query_param("$skiptoken", "page2"))
        .respond_with(json(json!({"value": [second]})))
        .expect(1)
        .mount(&server)
        .await;
    catch_all(&server).await;
    let rows = dataverse(&server)
        .list_managed_identities(Some("applicationid eq 00000000-0000-0000-0000-000000000001"))
        .await
        .unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[1].id, Uuid::from_u128(0x0d1f3d4e_0000_5000_8000_000000000002));
}

#[tokio::test]
async fn a_next_link_to_another_host_is_not_followed() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(json(
            json!({"value": [], "@odata.nextLink": "https://evil.example/api/data/v9.2/managedidentities?x=1"}),
        ))
        .mount(&server)
        .await;
    let err = dataverse(&server).list_managed_identities(None).await.unwrap_err();
    assert!(matches!(err, ApiError::ForeignHost { .. }), "{err:?}");
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
}

#[tokio::test]
async fn assemblies_and_packages_by_name_with_quotes_escaped() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(format!("{API}/pluginassemblies")))
        .and(query_param("$filter", "name eq 'Contoso.Plugins' or name eq 'O''Brien.Plugins'"))
        .respond_with(json(json!({"value": [{
            "pluginassemblyid": ASM.to_string(), "name": "O'Brien.Plugins", "isolationmode": 2,
            "_managedidentityid_value": null
        }]})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("{API}/pluginpackages")))
        .and(query_param("$filter", "uniquename eq 'contoso_Plugins'"))
        .respond_with(json(json!({"value": [{"pluginpackageid": "33333333-3333-3333-3333-333333333333", "uniquename": "contoso_Plugins"}]})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("{API}/pluginassemblies")))
        .and(query_param("$select", "pluginassemblyid,name,version,culture,publickeytoken,isolationmode,sourcetype,_packageid_value,_managedidentityid_value"))
        .respond_with(json(json!({"value": []})))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("{API}/pluginpackages")))
        .respond_with(json(json!({"value": []})))
        .mount(&server)
        .await;
    catch_all(&server).await;
    let client = dataverse(&server);
    let found = client.find_plugin_assemblies_by_name(&["Contoso.Plugins", "O'Brien.Plugins"]).await.unwrap();
    assert_eq!(found[0].name.as_deref(), Some("O'Brien.Plugins"));
    let pkgs = client.find_plugin_packages_by_name(&["contoso_Plugins"]).await.unwrap();
    assert_eq!(pkgs.len(), 1);
    assert!(client.find_plugin_assemblies_by_name(&[]).await.unwrap().is_empty());
    assert!(client.list_plugin_assemblies().await.unwrap().is_empty());
    assert!(client.list_plugin_packages().await.unwrap().is_empty());
}

#[tokio::test]
async fn bind_unbind_and_read_binding() {
    let server = MockServer::start().await;
    Mock::given(method("PATCH"))
        .and(path(format!("{API}/pluginassemblies({ASM})")))
        .and(header("if-match", "*"))
        .and(body_json(json!({"managedidentityid@odata.bind": format!("/managedidentities({MI})")})))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("PATCH"))
        .and(path(format!("{API}/pluginpackages({ASM})")))
        .and(body_json(json!({"managedidentityid@odata.bind": null})))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("{API}/pluginassemblies({ASM})")))
        .and(query_param("$select", "_managedidentityid_value"))
        .respond_with(json(json!({"pluginassemblyid": ASM.to_string(), "_managedidentityid_value": MI.to_string()})))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("{API}/pluginassemblies({ASM})")))
        .respond_with(json(json!({"pluginassemblyid": ASM.to_string(), "name": "Contoso.Plugins"})))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("{API}/pluginpackages({ASM})")))
        .respond_with(json(json!({"pluginpackageid": ASM.to_string(), "_managedidentityid_value": null})))
        .mount(&server)
        .await;
    catch_all(&server).await;
    let client = dataverse(&server);
    client.bind(ComponentKind::PluginAssembly, ASM, MI).await.unwrap();
    client.unbind(ComponentKind::PluginPackage, ASM).await.unwrap();
    assert_eq!(client.binding(ComponentKind::PluginAssembly, ASM).await.unwrap(), Some(MI));
    assert_eq!(client.binding(ComponentKind::PluginPackage, ASM).await.unwrap(), None);
    assert_eq!(client.get_plugin_assembly(ASM).await.unwrap().name.as_deref(), Some("Contoso.Plugins"));
    assert_eq!(client.get_plugin_package(ASM).await.unwrap().managed_identity_id, None);
}

#[tokio::test]
async fn component_fic_from_the_server() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(format!("{API}/GetComponentManagedIdentityFIC(ComponentName='pluginassembly',ComponentId={ASM})")))
        .respond_with(json(
            json!({"@odata.context": "x", "FICSubject": "/eid1/c/pub/t/abc/a/qzXoWDkuqUa3l6zM5mM0Rw/n/plugin/e/x/h/y"}),
        ))
        .mount(&server)
        .await;
    catch_all(&server).await;
    let fic = dataverse(&server).get_component_managed_identity_fic(ComponentKind::PluginAssembly, ASM).await.unwrap();
    assert!(fic.fic_subject.starts_with("/eid1/c/pub/"));
}

#[tokio::test]
async fn throttling_then_success_and_exhausted_503() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(format!("{API}/WhoAmI")))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after-ms", "1").set_body_json(json!({
            "error": {"code": "0x80072321", "message": "Number of requests exceeded the limit of 6000 over time window of 300 seconds."}
        })))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("{API}/WhoAmI")))
        .respond_with(json(
            json!({"UserId": Uuid::nil(), "BusinessUnitId": Uuid::nil(), "OrganizationId": Uuid::nil()}),
        ))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("{API}/managedidentities({MI})")))
        .respond_with(ResponseTemplate::new(503).set_body_string(
            "<html><body><h1>503 Service Unavailable</h1>   <p>The gateway is busy.</p></body></html>",
        ))
        .expect(3)
        .mount(&server)
        .await;
    let client = dataverse(&server);
    client.who_am_i().await.unwrap();
    let err = client.get_managed_identity(MI).await.unwrap_err();
    let ApiError::Service(e) = &err else { panic!("{err:?}") };
    assert_eq!(e.attempts, 3);
    assert_eq!(e.code, None);
    assert!(
        e.message.starts_with("(not a JSON error) <html><body><h1>503 Service Unavailable</h1> <p>"),
        "{}",
        e.message
    );
    assert!(err.to_string().contains("after 3 attempts"), "{err}");
}

#[tokio::test]
async fn a_body_that_does_not_decode_names_the_path() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(json(json!({"value": [mi_row(), {"managedidentityid": "not-a-guid"}]})))
        .mount(&server)
        .await;
    let err = dataverse(&server).list_managed_identities(None).await.unwrap_err();
    let ApiError::Decode { path, .. } = &err else { panic!("{err:?}") };
    assert_eq!(path, "value[1].managedidentityid");
}

#[tokio::test]
async fn client_errors_are_not_retried() {
    // A bind is safe to retry, but a 400 is never retried: trying again cannot help.
    let server = MockServer::start().await;
    Mock::given(method("PATCH"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({"error": {"code": "", "message": "bad"}})))
        .expect(1)
        .mount(&server)
        .await;
    let err = dataverse(&server).bind(ComponentKind::PluginAssembly, ASM, MI).await.unwrap_err();
    assert_eq!(err.service_code(), None, "an empty code is kept as None; the status remains");
    assert_eq!(err.status().unwrap().as_u16(), 400);
}

#[test]
fn org_urls() {
    for ok in [
        "https://contoso.crm.dynamics.com",
        "https://contoso.crm.dynamics.com/",
        "contoso.crm4.dynamics.com",
        "https://contoso.crm.microsoftdynamics.us",
        "https://contoso.crm.appsplatform.us",
        "https://contoso.crm.dynamics.cn",
    ] {
        assert!(OrgUrl::parse(ok).is_ok(), "{ok}");
    }
    for (bad, needle) in [
        ("http://contoso.crm.dynamics.com", "https"),
        ("https://contoso.crm.dynamics.com/api/data/v9.2/", "path"),
        ("https://contoso.crm.dynamics.com/?x=1", "query"),
        ("https://contoso.crm.dynamics.com:8443", "port"),
        ("https://example.com", "not a Dataverse host"),
        ("https://user:pw@contoso.crm.dynamics.com", "credentials"),
        ("not a url at all", "organization URL"),
        ("ftp://contoso.crm.dynamics.com", "https"),
    ] {
        let err = OrgUrl::parse(bad).unwrap_err().to_string();
        assert!(err.contains(needle), "{bad}: {err}");
    }
    assert!(OrgUrl::any_host("https://contoso.example.gov").is_ok());
    assert!(OrgUrl::loopback_for_testing("http://127.0.0.1:8080").is_ok());
    assert!(OrgUrl::loopback_for_testing("http://[::1]:8080").is_ok());
    assert!(OrgUrl::loopback_for_testing("http://10.0.0.1:8080").is_err());
    assert!(OrgUrl::loopback_for_testing("http://contoso.crm.dynamics.com").is_err());
}

#[tokio::test]
async fn dropped_connections_are_retried_then_reported() {
    use std::io::Read as _;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = std::sync::Arc::new(AtomicUsize::new(0));
    let counter = accepted.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { break };
            counter.fetch_add(1, Ordering::SeqCst);
            let mut buf = [0u8; 1024];
            let _ = stream.read(&mut buf);
            // Dropped without an answer: the client sees the connection close mid-request.
        }
    });
    let client = dataverse_mi::clients::DataverseClient::new(
        OrgUrl::loopback_for_testing(&format!("http://{addr}")).unwrap(),
        common::token(),
        common::options(),
    )
    .unwrap();
    let err = client.who_am_i().await.unwrap_err();
    assert!(matches!(err, ApiError::Transport { attempts: 3, .. }), "{err:?}");
    assert_eq!(accepted.load(Ordering::SeqCst), 3);
    assert!(!err.to_string().contains("secret-payload"));
}

#[tokio::test]
async fn registered_content_of_an_assembly_and_of_a_package_in_its_file_column() {
    let server = MockServer::start().await;
    catch_all(&server).await;
    let assembly = Uuid::from_u128(1);
    let package = Uuid::from_u128(2);
    let broken = Uuid::from_u128(3);
    Mock::given(method("GET"))
        .and(path(format!("/api/data/v9.2/pluginassemblies({assembly})")))
        .and(query_param("$select", "content"))
        .respond_with(json(
            json!({"pluginassemblyid": assembly, "content": "TVqQAAMAAAAEAAAA//8AALgAAAAAAAAAQAAAAAAAAAAA"}),
        ))
        .mount(&server)
        .await;
    // A package whose `content` is empty: its bytes are in the file column.
    Mock::given(method("GET"))
        .and(path(format!("/api/data/v9.2/pluginpackages({package})")))
        .respond_with(json(json!({"pluginpackageid": package, "content": null})))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/api/data/v9.2/pluginpackages({package})/fileid/$value")))
        .respond_with(ResponseTemplate::new(200).set_body_bytes(b"PK\x03\x04 a package".to_vec()))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/api/data/v9.2/pluginassemblies({broken})")))
        .respond_with(json(json!({"pluginassemblyid": broken, "content": "not base64!"})))
        .mount(&server)
        .await;
    let client = dataverse(&server);
    let bytes = client.registered_content(ComponentKind::PluginAssembly, assembly).await.unwrap().unwrap();
    assert_eq!(&bytes[..2], b"MZ");
    let bytes = client.registered_content(ComponentKind::PluginPackage, package).await.unwrap().unwrap();
    assert_eq!(bytes, b"PK\x03\x04 a package");
    let err = client.registered_content(ComponentKind::PluginAssembly, broken).await.unwrap_err();
    assert!(matches!(&err, ApiError::Decode { path, .. } if path == "content"), "{err:?}");
}

/// A `$batch` answer in the shape of Learn's "Execute batch operations using the Web API".
fn batch_answer(parts: &[(u16, &str)]) -> ResponseTemplate {
    let mut body = String::new();
    for (status, json) in parts {
        let reason = http::StatusCode::from_u16(*status).unwrap().canonical_reason().unwrap_or("");
        body.push_str(&format!(
            "--batchresponse_1\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\nHTTP/1.1 {status} {reason}\r\nContent-Type: application/json; odata.metadata=minimal\r\nOData-Version: 4.0\r\n\r\n{json}\r\n"
        ));
    }
    body.push_str("--batchresponse_1--\r\n");
    ResponseTemplate::new(200).set_body_raw(body, "multipart/mixed; boundary=batchresponse_1")
}

#[tokio::test]
async fn reads_in_one_batch_each_answer_typed() {
    use dataverse_mi::clients::{Batch, dataverse::requests};
    let server = MockServer::start().await;
    catch_all(&server).await;
    let missing = Uuid::from_u128(7);
    Mock::given(method("POST"))
        .and(path("/api/data/v9.2/$batch"))
        .and(header("prefer", "odata.continue-on-error"))
        .respond_with(batch_answer(&[
            (200, r#"{"Detail":{"OrganizationId":"11111111-1111-1111-1111-111111111111","EnvironmentId":"Default-72f988bf-86f1-41af-91ab-2d7cd011db47","TenantId":"72f988bf-86f1-41af-91ab-2d7cd011db47"}}"#),
            (200, r#"{"value":[]}"#),
            (404, r#"{"error":{"code":"0x80040217","message":"pluginassembly With Ids = 00000000-0000-0000-0000-000000000007 Do Not Exist"}}"#),
        ]))
        .expect(1)
        .mount(&server)
        .await;
    let client = dataverse(&server);
    let mut batch = Batch::new();
    let organization = batch.add(requests::current_organization());
    let rows = batch.add(requests::managed_identities(Some("applicationid eq 0b5a7d2c-6f4e-4d3a-9c1b-2a8e7f6d5c4b")));
    let assembly = batch.add(requests::plugin_assembly(missing));
    let mut answers = client.send_batch(&batch).await;
    assert_eq!(answers.round_trips(), 1);
    assert!(answers.failed_as_a_whole().is_none());
    let o = answers.take(organization).unwrap();
    assert_eq!(
        o.environment_id.map(|e| e.to_string()).as_deref(),
        Some("Default-72f988bf-86f1-41af-91ab-2d7cd011db47")
    );
    assert!(answers.take(rows).unwrap().is_empty());
    let err = answers.take(assembly).unwrap_err();
    assert!(err.is_not_found(), "the inner 404, typed as the single request's: {err:?}");
    assert_eq!(err.service_code(), Some("0x80040217"));
    assert!(answers.take(assembly).is_err(), "an answer is taken once");
    // What was sent: one multipart body with each GET, absolute URLs, no body.
    let sent = &server.received_requests().await.unwrap()[0];
    let content_type = sent.headers.get("content-type").unwrap().to_str().unwrap().to_owned();
    assert!(content_type.starts_with("multipart/mixed; boundary=batch_"), "{content_type}");
    let text = String::from_utf8_lossy(&sent.body);
    assert_eq!(text.matches("Content-Type: application/http").count(), 3);
    assert!(text.contains(&format!("GET {}/api/data/v9.2/RetrieveCurrentOrganization(", server.uri())), "{text}");
    assert!(text.contains(&format!("pluginassemblies({missing})?%24select=")), "{text}");
}

/// A batch answered with something that is not a batch answer fails as a whole, with a typed error for every
/// request: the client does not send the requests again behind the caller's back (the engine decides that).
#[tokio::test]
async fn a_batch_that_is_not_a_batch_answer_fails_as_a_whole() {
    use dataverse_mi::clients::{Batch, dataverse::requests};
    let server = MockServer::start().await;
    catch_all(&server).await;
    Mock::given(method("POST"))
        .and(path("/api/data/v9.2/$batch"))
        .respond_with(json(json!({"not": "multipart"})))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/data/v9.2/pluginpackages"))
        .respond_with(json(
            json!({"value": [{"pluginpackageid": Uuid::from_u128(9), "uniquename": "contoso_Plugins"}]}),
        ))
        .expect(1)
        .mount(&server)
        .await;
    let client = dataverse(&server);
    let mut batch = Batch::new();
    let packages = batch.add(requests::plugin_packages());
    let mut answers = client.send_batch(&batch).await;
    assert!(matches!(answers.failed_as_a_whole(), Some(ApiError::Decode { .. })), "{answers:?}");
    assert!(matches!(answers.take(packages), Err(ApiError::Decode { .. })));
    // The same values, one by one, when the caller asks.
    let mut answers = client.send_each(&batch).await;
    assert_eq!(answers.take(packages).unwrap().len(), 1);
}

#[tokio::test]
async fn a_change_set_refers_to_the_created_row_and_fails_typed() {
    use dataverse_mi::clients::{Batch, dataverse::requests};
    let server = MockServer::start().await;
    catch_all(&server).await;
    // The change set failed: the service answers with the one response that failed it.
    Mock::given(method("POST"))
        .and(path("/api/data/v9.2/$batch"))
        .respond_with(batch_answer(&[(
            412,
            r#"{"error":{"code":"0x80040237","message":"A record with matching key values already exists."}}"#,
        )]))
        .mount(&server)
        .await;
    let row = NewManagedIdentity::for_plugins(
        Uuid::from_u128(1),
        Uuid::from_u128(2),
        Uuid::from_u128(3),
        SubjectFormatVersion::V2,
    );
    let mut writes = Batch::new();
    writes.add(requests::create_managed_identity(&row));
    writes.add(requests::bind(ComponentKind::PluginAssembly, Uuid::from_u128(4), row.id));
    writes.add(requests::bind(ComponentKind::PluginPackage, Uuid::from_u128(5), Uuid::from_u128(6)));
    let err = dataverse(&server).send_change_set(&writes).await.unwrap_err();
    assert!(err.is_conflict(), "{err:?}");
    let sent = &server.received_requests().await.unwrap()[0];
    let text = String::from_utf8_lossy(&sent.body);
    assert_eq!(text.matches("boundary=changeset_").count(), 1, "one change set: {text}");
    assert!(text.contains("Content-ID: 1") && text.contains("Content-ID: 3"), "{text}");
    // The bind to the row created in the set refers to it as $1; a bind to another row names it.
    assert!(text.contains(r#"{"managedidentityid@odata.bind":"$1"}"#), "{text}");
    assert!(text.contains(&format!(r#""/managedidentities({})""#, Uuid::from_u128(6))), "{text}");
    assert!(text.to_ascii_lowercase().contains("if-match: *"), "{text}");
}

/// A batch holds one concurrency permit, or one per inner request (`BatchPermits::PerRequest`).
#[tokio::test]
async fn a_batch_holds_the_permits_its_accounting_says() {
    use dataverse_mi::clients::{BatchPermits, ClientOptions, ConcurrencyLimit, DataverseClient, dataverse::requests};
    use dataverse_mi::http::{Transport, TransportError};
    use std::sync::{Arc, Mutex};
    #[derive(Debug)]
    struct Observe(ConcurrencyLimit, Mutex<Vec<usize>>);
    #[async_trait::async_trait]
    impl Transport for Observe {
        async fn send(&self, _: http::Request<bytes::Bytes>) -> Result<http::Response<bytes::Bytes>, TransportError> {
            self.1.lock().unwrap().push(self.0.available());
            let mut r = http::Response::new(bytes::Bytes::from_static(b"not a batch"));
            *r.status_mut() = http::StatusCode::SERVICE_UNAVAILABLE;
            Ok(r)
        }
    }
    for (permits, held) in [(BatchPermits::PerRoundTrip, 1), (BatchPermits::PerRequest, 3)] {
        let limit = ConcurrencyLimit::new(8);
        let observe = Arc::new(Observe(limit.clone(), Mutex::new(Vec::new())));
        let mut options = common::options();
        options.retry.max_attempts = 1;
        let options = ClientOptions {
            transport: Some(observe.clone()),
            shared_limit: Some(limit),
            batch_permits: permits,
            ..options
        };
        let client =
            DataverseClient::new(OrgUrl::parse("https://contoso.crm.dynamics.com").unwrap(), common::token(), options)
                .unwrap();
        let mut reads = dataverse_mi::clients::Batch::new();
        reads.add(requests::current_organization());
        reads.add(requests::plugin_assemblies());
        reads.add(requests::plugin_packages());
        let _ = client.send_batch(&reads).await;
        assert_eq!(observe.1.lock().unwrap()[0], 8 - held, "{permits:?}");
    }
}

/// A call added in one place (`requests::version`): sent alone and inside a batch, decoded the same way. The answer
/// is in the shape of Learn's "RetrieveVersion Function" response.
#[tokio::test]
async fn a_request_value_is_sent_alone_or_in_a_batch_and_decoded_alike() {
    use dataverse_mi::clients::{Batch, dataverse::requests};
    let server = MockServer::start().await;
    let answer = r#"{"@odata.context":"https://contoso.crm.dynamics.com/api/data/v9.2/$metadata#Microsoft.Dynamics.CRM.RetrieveVersionResponse","Version":"9.2.24044.196"}"#;
    Mock::given(method("GET"))
        .and(path("/api/data/v9.2/RetrieveVersion()"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(answer, "application/json"))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/api/data/v9.2/$batch"))
        .respond_with(batch_answer(&[(200, answer)]))
        .mount(&server)
        .await;
    catch_all(&server).await;
    let client = dataverse(&server);
    assert_eq!(client.send(requests::version()).await.unwrap(), "9.2.24044.196");
    let mut batch = Batch::new();
    let version = batch.add(requests::version());
    assert_eq!(client.send_batch(&batch).await.take(version).unwrap(), "9.2.24044.196");
}
