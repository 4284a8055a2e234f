//! A small element tree over quick-xml, enough for SOAP envelopes and qbXML messages: names
//! without their namespace prefix, attributes, text, children in order.
use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Element {
    /// The local name (`soap:Body` is `Body`).
    pub name: String,
    pub attrs: Vec<(String, String)>,
    pub text: String,
    pub children: Vec<Element>,
}

impl Element {
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }

    pub fn children<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }

    /// The text of a child, if there is one.
    pub fn text_of(&self, name: &str) -> Option<&str> {
        self.child(name).map(|c| c.text.as_str())
    }

    /// The text at a path of child names (`["ParentRef", "FullName"]`).
    pub fn path(&self, names: &[&str]) -> Option<&str> {
        let mut at = self;
        for n in names {
            at = at.child(n)?;
        }
        Some(at.text.as_str())
    }

    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

fn local(name: &str) -> String {
    name.rsplit_once(':').map_or(name, |(_, l)| l).to_owned()
}

fn open(e: &BytesStart<'_>) -> Result<Element, String> {
    let mut attrs = Vec::new();
    for a in e.attributes() {
        let a = a.map_err(|e| e.to_string())?;
        let value = a
            .normalized_value(quick_xml::XmlVersion::Implicit1_0)
            .map_err(|e| e.to_string())?;
        attrs.push((local(a.key.as_ref()), value.into_owned()));
    }
    Ok(Element {
        name: local(e.name().as_ref()),
        attrs,
        ..Element::default()
    })
}

/// How deep elements may nest. SOAP envelopes and qbXML messages stay under a dozen levels; the
/// Web Connector's endpoint takes documents before anyone has signed in, and a tree millions
/// of levels deep overflowed the stack of whatever walked or dropped it, killing the server.
const MAX_DEPTH: usize = 64;

/// Parses a document into its root element; the error says where it broke.
pub fn parse(text: &str) -> Result<Element, String> {
    parse_at_most(text, usize::MAX)
}

/// [`parse`], refusing a document of more than `max_elements` elements before building them.
/// A SOAP call arrives before anyone is known, and each tiny element (`<a/>`, four bytes)
/// costs a tree node thirty times its size: one 16 MiB body of them held half a gigabyte.
pub fn parse_at_most(text: &str, max_elements: usize) -> Result<Element, String> {
    let mut reader = Reader::from_str(text);
    let mut elements = 0usize;
    let mut stack: Vec<Element> = Vec::new();
    let mut root = None;
    let close = |stack: &mut Vec<Element>, root: &mut Option<Element>, done: Element| match stack
        .last_mut()
    {
        Some(parent) => parent.children.push(done),
        None => *root = Some(done),
    };
    loop {
        let at = reader.buffer_position();
        let event = reader
            .read_event()
            .map_err(|e| format!("not well-formed XML at byte {at}: {e}"))?;
        if matches!(event, Event::Start(_) | Event::Empty(_)) {
            elements += 1;
            if elements > max_elements {
                return Err(format!("more than {max_elements} elements (at byte {at})"));
            }
        }
        match event {
            Event::Start(_) if stack.len() == MAX_DEPTH => {
                return Err(format!(
                    "elements nest deeper than {MAX_DEPTH} levels at byte {at}"
                ));
            }
            Event::Start(e) => stack.push(open(&e)?),
            Event::Empty(e) => {
                let done = open(&e)?;
                close(&mut stack, &mut root, done);
            }
            Event::End(_) => {
                let done = stack.pop().ok_or("an end tag without its start")?;
                close(&mut stack, &mut root, done);
            }
            Event::Text(t) => {
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&t.xml10_content());
                }
            }
            Event::CData(t) => {
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&t.into_inner());
                }
            }
            Event::GeneralRef(r) => {
                let name = r.xml10_content();
                let c = match r.resolve_char_ref().map_err(|e| e.to_string())? {
                    Some(c) => c.to_string(),
                    None => quick_xml::escape::resolve_predefined_entity(&name)
                        .ok_or_else(|| format!("unknown entity &{name};"))?
                        .to_owned(),
                };
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&c);
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if !stack.is_empty() {
        return Err("the document ends inside an element".into());
    }
    let mut root = root.ok_or("the document is empty")?;
    trim(&mut root);
    Ok(root)
}

/// Whitespace around an element that holds children is layout, not content.
fn trim(e: &mut Element) {
    if !e.children.is_empty() && e.text.trim().is_empty() {
        e.text.clear();
    }
    for c in &mut e.children {
        trim(c);
    }
}

/// Text or an attribute value with `& < > " '` escaped.
pub fn esc(s: &str) -> String {
    quick_xml::escape::escape(s).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_text_entities_and_attributes() {
        let e = parse(
            r#"<?xml version="1.0"?><s:Envelope xmlns:s="x"><s:Body>
            <a id="1 &amp; 2"><b>R&amp;D &#233;</b><c/></a></s:Body></s:Envelope>"#,
        )
        .unwrap();
        assert_eq!(e.name, "Envelope");
        let a = e.child("Body").unwrap().child("a").unwrap();
        assert_eq!(a.attr("id"), Some("1 & 2"));
        assert_eq!(a.text_of("b"), Some("R&D é"));
        assert_eq!(a.text_of("c"), Some(""));
        assert!(parse("<a><b></a>").is_err());
        assert_eq!(esc("a<b & 'c'"), "a&lt;b &amp; &apos;c&apos;");
    }

    #[test]
    fn refuses_elements_nested_too_deep() {
        let nested = |n: usize| format!("{}{}", "<a>".repeat(n), "</a>".repeat(n));
        assert!(parse(&nested(MAX_DEPTH)).is_ok());
        assert_eq!(
            parse(&nested(MAX_DEPTH + 1)).unwrap_err(),
            format!("elements nest deeper than {MAX_DEPTH} levels at byte 192")
        );
        // As deep as the endpoint's size limit allows: refused, not a stack overflow.
        assert!(parse(&nested(1_000_000)).is_err());
    }

    #[test]
    fn refuses_more_elements_than_allowed_before_building_them() {
        let flat = |n: usize| format!("<a>{}</a>", "<b/>".repeat(n));
        assert_eq!(parse_at_most(&flat(2), 3).unwrap().children.len(), 2);
        assert_eq!(
            parse_at_most(&flat(3), 3).unwrap_err(),
            "more than 3 elements (at byte 11)"
        );
    }
}
