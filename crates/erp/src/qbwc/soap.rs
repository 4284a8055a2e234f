//! The QuickBooks Web Connector's side of the wire: SOAP 1.1 document/literal calls in the
//! `http://developer.intuit.com/` namespace, their answers, the WSDL, and the `.qwc` file that
//! tells QBWC where Costbridge is.
use super::xml::{esc, parse_at_most};
use std::collections::BTreeMap;

pub const NAMESPACE: &str = "http://developer.intuit.com/";

/// The most elements a call's envelope is read with. The Web Connector's calls hold a few
/// parameters (QuickBooks' answer travels as one escaped text); the limit keeps a body of tiny
/// elements, sent before any sign-in, from being built into a tree.
const MAX_CALL_ELEMENTS: usize = 256;

/// One call QBWC makes, with its parameters by name (`ticket`, `strUserName`, …).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    pub method: String,
    pub params: BTreeMap<String, String>,
}

impl Call {
    pub fn param(&self, name: &str) -> &str {
        self.params.get(name).map_or("", String::as_str)
    }
}

/// The methods QBWC calls, in the order a session uses them.
pub const METHODS: [&str; 8] = [
    "serverVersion",
    "clientVersion",
    "authenticate",
    "sendRequestXML",
    "receiveResponseXML",
    "connectionError",
    "getLastError",
    "closeConnection",
];

/// Reads a SOAP request; `action` is the `SOAPAction` header, which must name the same method
/// as the body when it is given.
pub fn read_call(body: &str, action: Option<&str>) -> Result<Call, String> {
    let env = parse_at_most(body, MAX_CALL_ELEMENTS)?;
    if env.name != "Envelope" {
        return Err(format!("expected a SOAP Envelope, got <{}>", env.name));
    }
    let call = env
        .child("Body")
        .and_then(|b| b.children.first())
        .ok_or("the SOAP Body holds no call")?;
    if !METHODS.contains(&call.name.as_str()) {
        return Err(format!("unknown method '{}'", call.name));
    }
    if let Some(a) = action
        .map(|a| a.trim_matches('"'))
        .filter(|a| !a.is_empty())
        && a != format!("{NAMESPACE}{}", call.name)
    {
        return Err(format!(
            "SOAPAction '{a}' does not match the call '{}'",
            call.name
        ));
    }
    Ok(Call {
        method: call.name.clone(),
        params: call
            .children
            .iter()
            .map(|p| (p.name.clone(), p.text.clone()))
            .collect(),
    })
}

/// What a method returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    Text(String),
    Number(i64),
    /// `authenticate`'s string array.
    Strings(Vec<String>),
}

fn envelope(inner: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?><soap:Envelope xmlns:soap=\"http://schemas.xmlsoap.org/soap/envelope/\" xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xmlns:xsd=\"http://www.w3.org/2001/XMLSchema\"><soap:Body>{inner}</soap:Body></soap:Envelope>"
    )
}

/// The SOAP answer to `method`.
pub fn reply(method: &str, value: &Reply) -> String {
    let result = match value {
        Reply::Text(t) => esc(t),
        Reply::Number(n) => n.to_string(),
        Reply::Strings(s) => s
            .iter()
            .map(|s| format!("<string>{}</string>", esc(s)))
            .collect(),
    };
    envelope(&format!(
        "<{method}Response xmlns=\"{NAMESPACE}\"><{method}Result>{result}</{method}Result></{method}Response>"
    ))
}

/// A SOAP fault: the request could not be read (QBWC shows the text in its log).
pub fn fault(message: &str) -> String {
    envelope(&format!(
        "<soap:Fault><faultcode>soap:Client</faultcode><faultstring>{}</faultstring></soap:Fault>",
        esc(message)
    ))
}

/// Each method's parameters and result type, for the WSDL.
const SIGNATURES: [(&str, &[&str], &str); 8] = [
    ("serverVersion", &[], "s:string"),
    ("clientVersion", &["strVersion"], "s:string"),
    (
        "authenticate",
        &["strUserName", "strPassword"],
        "tns:ArrayOfString",
    ),
    (
        "sendRequestXML",
        &[
            "ticket",
            "strHCPResponse",
            "strCompanyFileName",
            "qbXMLCountry",
            "qbXMLMajorVers",
            "qbXMLMinorVers",
        ],
        "s:string",
    ),
    (
        "receiveResponseXML",
        &["ticket", "response", "hresult", "message"],
        "s:int",
    ),
    (
        "connectionError",
        &["ticket", "hresult", "message"],
        "s:string",
    ),
    ("getLastError", &["ticket"], "s:string"),
    ("closeConnection", &["ticket"], "s:string"),
];

/// The service description served at `?wsdl`, for `location`.
pub fn wsdl(location: &str) -> String {
    let mut types = String::from(
        "<s:complexType name=\"ArrayOfString\"><s:sequence><s:element minOccurs=\"0\" maxOccurs=\"unbounded\" name=\"string\" nillable=\"true\" type=\"s:string\"/></s:sequence></s:complexType>",
    );
    let (mut messages, mut ops, mut bindings) = (String::new(), String::new(), String::new());
    for (m, params, result) in SIGNATURES {
        let fields: String = params
            .iter()
            .map(|p| {
                // Intuit's own WSDL types the qbXML version numbers as integers.
                let ty = if p.starts_with("qbXMLM") {
                    "s:int"
                } else {
                    "s:string"
                };
                format!("<s:element minOccurs=\"0\" maxOccurs=\"1\" name=\"{p}\" type=\"{ty}\"/>")
            })
            .collect();
        types.push_str(&format!(
            "<s:element name=\"{m}\"><s:complexType><s:sequence>{fields}</s:sequence></s:complexType></s:element>\
             <s:element name=\"{m}Response\"><s:complexType><s:sequence><s:element minOccurs=\"0\" maxOccurs=\"1\" name=\"{m}Result\" type=\"{result}\"/></s:sequence></s:complexType></s:element>"
        ));
        messages.push_str(&format!(
            "<wsdl:message name=\"{m}SoapIn\"><wsdl:part name=\"parameters\" element=\"tns:{m}\"/></wsdl:message>\
             <wsdl:message name=\"{m}SoapOut\"><wsdl:part name=\"parameters\" element=\"tns:{m}Response\"/></wsdl:message>"
        ));
        ops.push_str(&format!(
            "<wsdl:operation name=\"{m}\"><wsdl:input message=\"tns:{m}SoapIn\"/><wsdl:output message=\"tns:{m}SoapOut\"/></wsdl:operation>"
        ));
        bindings.push_str(&format!(
            "<wsdl:operation name=\"{m}\"><soap:operation soapAction=\"{NAMESPACE}{m}\" style=\"document\"/><wsdl:input><soap:body use=\"literal\"/></wsdl:input><wsdl:output><soap:body use=\"literal\"/></wsdl:output></wsdl:operation>"
        ));
    }
    format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\
         <wsdl:definitions xmlns:soap=\"http://schemas.xmlsoap.org/wsdl/soap/\" xmlns:s=\"http://www.w3.org/2001/XMLSchema\" xmlns:tns=\"{NAMESPACE}\" xmlns:wsdl=\"http://schemas.xmlsoap.org/wsdl/\" targetNamespace=\"{NAMESPACE}\">\
         <wsdl:types><s:schema elementFormDefault=\"qualified\" targetNamespace=\"{NAMESPACE}\">{types}</s:schema></wsdl:types>\
         {messages}<wsdl:portType name=\"QBWebConnectorSvcSoap\">{ops}</wsdl:portType>\
         <wsdl:binding name=\"QBWebConnectorSvcSoap\" type=\"tns:QBWebConnectorSvcSoap\"><soap:binding transport=\"http://schemas.xmlsoap.org/soap/http\"/>{bindings}</wsdl:binding>\
         <wsdl:service name=\"QBWebConnectorSvc\"><wsdl:port name=\"QBWebConnectorSvcSoap\" binding=\"tns:QBWebConnectorSvcSoap\"><soap:address location=\"{}\"/></wsdl:port></wsdl:service>\
         </wsdl:definitions>",
        esc(location)
    )
}

/// What goes in a company's `.qwc` file.
pub struct Qwc<'a> {
    pub company: &'a str,
    pub app_url: &'a str,
    pub support_url: &'a str,
    pub user_name: &'a str,
    pub owner_id: &'a str,
    pub file_id: &'a str,
    pub every_minutes: u32,
}

/// The `.qwc` file the admin adds to the Web Connector.
pub fn qwc(q: &Qwc<'_>) -> String {
    format!(
        "<?xml version=\"1.0\"?>\r\n<QBWCXML>\r\n  <AppName>Costbridge - {company}</AppName>\r\n  <AppID></AppID>\r\n  <AppURL>{url}</AppURL>\r\n  <AppDescription>Cost codes from Costbridge, created as service items once an accounting approver exports them.</AppDescription>\r\n  <AppSupport>{support}</AppSupport>\r\n  <UserName>{user}</UserName>\r\n  <OwnerID>{owner}</OwnerID>\r\n  <FileID>{file}</FileID>\r\n  <QBType>QBFS</QBType>\r\n  <Scheduler>\r\n    <RunEveryNMinutes>{every}</RunEveryNMinutes>\r\n  </Scheduler>\r\n  <IsReadOnly>false</IsReadOnly>\r\n</QBWCXML>\r\n",
        company = esc(q.company),
        url = esc(q.app_url),
        support = esc(q.support_url),
        user = esc(q.user_name),
        owner = esc(q.owner_id),
        file = esc(q.file_id),
        every = q.every_minutes,
    )
}

#[cfg(test)]
mod tests {
    use super::super::xml::parse;
    use super::*;

    const AUTH: &str = r#"<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body><authenticate xmlns="http://developer.intuit.com/"><strUserName>costbridge-1</strUserName><strPassword>p&amp;ss</strPassword></authenticate></soap:Body></soap:Envelope>"#;

    #[test]
    fn calls_are_read_with_their_parameters_and_action() {
        let c = read_call(AUTH, Some("\"http://developer.intuit.com/authenticate\"")).unwrap();
        assert_eq!(c.method, "authenticate");
        assert_eq!(
            (c.param("strUserName"), c.param("strPassword")),
            ("costbridge-1", "p&ss")
        );
        assert!(read_call(AUTH, Some("http://developer.intuit.com/closeConnection")).is_err());
        assert!(read_call("<a/>", None).is_err());
        let r = reply(
            "authenticate",
            &Reply::Strings(vec!["t<1>".into(), "none".into()]),
        );
        assert!(r.contains("<authenticateResponse xmlns=\"http://developer.intuit.com/\"><authenticateResult><string>t&lt;1&gt;</string><string>none</string></authenticateResult></authenticateResponse>"), "{r}");
        assert!(parse(&wsdl("https://x.example/qbwc")).is_ok());
        // A call padded with a million empty elements is refused unread.
        let padded = AUTH.replace(
            "<strPassword>",
            &format!("{}<strPassword>", "<a/>".repeat(1 << 20)),
        );
        assert!(
            read_call(&padded, None)
                .unwrap_err()
                .starts_with("more than 256 elements"),
        );
    }

    #[test]
    fn the_qwc_file_names_the_service_and_the_user() {
        let q = qwc(&Qwc {
            company: "A & B",
            app_url: "https://cb.example/qbwc",
            support_url: "https://cb.example/",
            user_name: "costbridge-1",
            owner_id: "{57F3B9B1-86F1-4fcc-B1EE-566DE1813D20}",
            file_id: "{90A44FB5-33D9-4815-AC85-BC87A7E7D1EB}",
            every_minutes: 15,
        });
        let e = parse(&q).unwrap();
        assert_eq!(e.text_of("AppName"), Some("Costbridge - A & B"));
        assert_eq!(e.text_of("AppURL"), Some("https://cb.example/qbwc"));
        assert_eq!(e.text_of("QBType"), Some("QBFS"));
        assert_eq!(e.path(&["Scheduler", "RunEveryNMinutes"]), Some("15"));
    }
}
