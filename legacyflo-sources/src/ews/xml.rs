//! A small element tree over `quick-xml` events, enough to read EWS answers: local names
//! (namespace prefixes dropped), attributes and text with entities resolved.

use quick_xml::events::Event;

/// One element.
#[derive(Clone, Debug, Default)]
pub struct Node {
    /// Its local name (`t:Folder` → `Folder`).
    pub name: String,
    /// Its attributes by local name, unescaped.
    pub attrs: Vec<(String, String)>,
    /// Its child elements in order.
    pub children: Vec<Node>,
    /// Its text content (direct text only), unescaped.
    pub text: String,
}

fn local(qname: &[u8]) -> String {
    let s = String::from_utf8_lossy(qname);
    match s.rsplit_once(':') {
        Some((_, l)) => l.to_string(),
        None => s.into_owned(),
    }
}

fn element(e: &quick_xml::events::BytesStart<'_>) -> Result<Node, String> {
    let mut n = Node {
        name: local(e.name().as_ref()),
        ..Node::default()
    };
    for a in e.attributes() {
        let a = a.map_err(|e| e.to_string())?;
        let v = a.unescape_value().map_err(|e| e.to_string())?;
        n.attrs.push((local(a.key.as_ref()), v.into_owned()));
    }
    Ok(n)
}

/// Parses a whole document into its root element.
pub fn parse(body: &[u8]) -> Result<Node, String> {
    let mut reader = quick_xml::Reader::from_reader(body);
    let mut stack: Vec<Node> = vec![Node::default()];
    let mut buf = Vec::new();
    loop {
        let ev = reader
            .read_event_into(&mut buf)
            .map_err(|e| format!("XML at byte {}: {e}", reader.buffer_position()))?;
        match ev {
            Event::Start(e) => stack.push(element(&e)?),
            Event::Empty(e) => {
                let n = element(&e)?;
                if let Some(top) = stack.last_mut() {
                    top.children.push(n);
                }
            }
            Event::End(_) => {
                let done = stack.pop().ok_or("unbalanced XML")?;
                match stack.last_mut() {
                    Some(top) => top.children.push(done),
                    None => return Err("unbalanced XML".to_string()),
                }
            }
            Event::Text(t) => {
                let s = t.decode().map_err(|e| e.to_string())?;
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&s);
                }
            }
            Event::CData(t) => {
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&String::from_utf8_lossy(&t));
                }
            }
            Event::GeneralRef(r) => {
                let name = r.decode().map_err(|e| e.to_string())?;
                let ch = match r.resolve_char_ref().map_err(|e| e.to_string())? {
                    Some(c) => c.to_string(),
                    None => quick_xml::escape::resolve_predefined_entity(&name)
                        .ok_or_else(|| format!("unknown XML entity `&{name};`"))?
                        .to_string(),
                };
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&ch);
                }
            }
            Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    if stack.len() != 1 {
        return Err("XML document ends inside an element".to_string());
    }
    stack
        .pop()
        .and_then(|mut r| r.children.pop())
        .ok_or_else(|| "empty XML document".to_string())
}

impl Node {
    /// The first child named `name`.
    pub fn child(&self, name: &str) -> Option<&Node> {
        self.children.iter().find(|c| c.name == name)
    }

    /// The children named `name`.
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Node> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }

    /// The first descendant (depth first, self excluded) named `name`.
    pub fn find(&self, name: &str) -> Option<&Node> {
        self.children.iter().find_map(|c| {
            if c.name == name {
                Some(c)
            } else {
                c.find(name)
            }
        })
    }

    /// An attribute's value.
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The trimmed text of child `name`.
    pub fn child_text(&self, name: &str) -> Option<&str> {
        self.child(name).map(|c| c.text.trim())
    }
}

/// Escapes text for an XML element or attribute.
pub fn escape(s: &str) -> String {
    quick_xml::escape::escape(s).into_owned()
}
