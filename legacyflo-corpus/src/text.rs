//! Word lists, people and text generation.

use crate::encode::Charset;
use crate::rng::Rng;

/// Language of a generated text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lang {
    /// English (ASCII).
    En,
    /// German (Latin-1 letters).
    De,
    /// French (Latin-1 letters, some Windows-1252 punctuation).
    Fr,
    /// Russian (Cyrillic).
    Ru,
    /// Japanese (kana + a fixed set of kanji).
    Ja,
}

const EN: &[&str] = &[
    "the",
    "project",
    "meeting",
    "report",
    "please",
    "review",
    "attached",
    "budget",
    "schedule",
    "customer",
    "invoice",
    "update",
    "release",
    "quarter",
    "team",
    "deadline",
    "server",
    "migration",
    "mailbox",
    "archive",
    "agreement",
    "draft",
    "next",
    "week",
    "we",
    "should",
    "discuss",
    "results",
    "and",
    "with",
    "for",
    "about",
    "our",
    "new",
    "final",
    "numbers",
    "office",
    "travel",
    "contract",
    "support",
    "ticket",
    "question",
    "answer",
    "thanks",
    "regarding",
    "feedback",
    "planning",
    "today",
    "tomorrow",
    "proposal",
    "details",
    "status",
];
const DE: &[&str] = &[
    "das",
    "Projekt",
    "Besprechung",
    "Bericht",
    "bitte",
    "prüfen",
    "anbei",
    "Rechnung",
    "Zeitplan",
    "Kunde",
    "Änderung",
    "Übersicht",
    "Größe",
    "Straße",
    "Grüße",
    "für",
    "über",
    "nächste",
    "Woche",
    "wir",
    "sollten",
    "Ergebnisse",
    "und",
    "mit",
    "unser",
    "neue",
    "endgültige",
    "Zahlen",
    "Büro",
    "Reise",
    "Vertrag",
    "Unterstützung",
    "Frage",
    "Antwort",
    "Danke",
    "bezüglich",
    "Rückmeldung",
    "Planung",
    "heute",
    "morgen",
    "Angebot",
    "Einzelheiten",
    "Stand",
    "Müller",
    "Köln",
    "München",
    "Zürich",
    "schön",
    "gemäß",
    "Entwurf",
    "Qualität",
];
const FR: &[&str] = &[
    "le",
    "projet",
    "réunion",
    "rapport",
    "veuillez",
    "vérifier",
    "ci-joint",
    "facture",
    "calendrier",
    "client",
    "mise",
    "à",
    "jour",
    "trimestre",
    "équipe",
    "échéance",
    "serveur",
    "été",
    "prochaine",
    "semaine",
    "nous",
    "devrions",
    "résultats",
    "et",
    "avec",
    "pour",
    "notre",
    "nouveau",
    "définitif",
    "chiffres",
    "bureau",
    "voyage",
    "contrat",
    "question",
    "réponse",
    "merci",
    "concernant",
    "retour",
    "planification",
    "aujourd'hui",
    "demain",
    "proposition",
    "détails",
    "état",
    "garçon",
    "Noël",
    "cœur",
    "où",
    "très",
    "déjà",
];
const RU: &[&str] = &[
    "проект",
    "встреча",
    "отчёт",
    "пожалуйста",
    "проверьте",
    "вложение",
    "счёт",
    "график",
    "клиент",
    "обновление",
    "квартал",
    "команда",
    "срок",
    "сервер",
    "перенос",
    "почта",
    "архив",
    "договор",
    "черновик",
    "следующая",
    "неделя",
    "мы",
    "должны",
    "обсудить",
    "результаты",
    "и",
    "с",
    "для",
    "о",
    "наш",
    "новый",
    "итоговый",
    "цифры",
    "офис",
    "поездка",
    "вопрос",
    "ответ",
    "спасибо",
    "сегодня",
    "завтра",
    "предложение",
    "детали",
    "статус",
    "Привет",
    "Москва",
    "ёлка",
];
const JA: &[&str] = &[
    "お世話になっております。",
    "会議の資料を添付します。",
    "来週の打ち合わせについてご連絡します。",
    "よろしくお願いいたします。",
    "日本語のテストメールです。",
    "東京オフィスの山田です。",
    "予定を確認してください。",
    "ありがとうございます。",
    "新しいプロジェクトの件で、",
    "明日の午後三時はいかがでしょうか。",
    "「進捗報告」",
];

/// Japanese subjects (all characters are in the JIS table).
pub const JA_SUBJECTS: &[&str] = &[
    "会議のお知らせ",
    "日本語の件名テスト",
    "来週の予定について",
    "「進捗報告」",
];

/// Lines that start with `From ` (or `>From `) so that mbox quoting gets exercised.
pub const FROM_LINES: &[&str] = &[
    "From the minutes of our last meeting:",
    "From now on, please send invoices to the new address.",
    ">From the archive: this line already starts with a quoted From.",
    "From: this is body text that merely looks like a header",
    ">>From deep inside a quoted quote",
];

/// A correspondent.
#[derive(Clone, Copy, Debug)]
pub struct Person {
    /// Display name (may be non-ASCII).
    pub name: &'static str,
    /// Address.
    pub addr: &'static str,
    /// Native language.
    pub lang: Lang,
}

/// The mailbox owner of the sample mailbox.
pub const OWNER: Person = Person {
    name: "Anna Schmidt",
    addr: "anna.schmidt@firma.example",
    lang: Lang::De,
};

/// Correspondents.
pub const PEOPLE: &[Person] = &[
    Person {
        name: "John Smith",
        addr: "john.smith@example.com",
        lang: Lang::En,
    },
    Person {
        name: "Mary Johnson",
        addr: "mary@example.org",
        lang: Lang::En,
    },
    Person {
        name: "Peter O'Brien",
        addr: "p.obrien@example.net",
        lang: Lang::En,
    },
    Person {
        name: "Linda Davis",
        addr: "linda.davis@kunde.example",
        lang: Lang::En,
    },
    Person {
        name: "Jürgen Müller",
        addr: "juergen.mueller@firma.example",
        lang: Lang::De,
    },
    Person {
        name: "Klaus Weiß",
        addr: "k.weiss@kunde.example",
        lang: Lang::De,
    },
    Person {
        name: "Sabine Köhler",
        addr: "sabine.koehler@firma.example",
        lang: Lang::De,
    },
    Person {
        name: "Björn Schäfer",
        addr: "bjoern@example.test",
        lang: Lang::De,
    },
    Person {
        name: "François Dupont",
        addr: "f.dupont@example.org",
        lang: Lang::Fr,
    },
    Person {
        name: "Hélène Léger",
        addr: "helene.leger@example.net",
        lang: Lang::Fr,
    },
    Person {
        name: "Дмитрий Иванов",
        addr: "d.ivanov@example.com",
        lang: Lang::Ru,
    },
    Person {
        name: "Ольга Петрова",
        addr: "olga@example.org",
        lang: Lang::Ru,
    },
    Person {
        name: "山田太郎",
        addr: "yamada@example.test",
        lang: Lang::Ja,
    },
    Person {
        name: "佐藤花子",
        addr: "hanako.sato@example.com",
        lang: Lang::Ja,
    },
];

/// Subject stems per language.
pub fn subjects(lang: Lang) -> &'static [&'static str] {
    match lang {
        Lang::En => &[
            "Quarterly report",
            "Meeting on Thursday",
            "Server migration plan",
            "Your support ticket",
            "Budget 2024 draft",
            "Contract renewal",
            "Travel arrangements",
            "Release notes",
        ],
        Lang::De => &[
            "Besprechung nächste Woche",
            "Änderungen am Vertrag",
            "Grüße aus München",
            "Übersicht der Rechnungen",
            "Entwurf für das Angebot",
            "Qualitätsprüfung",
            "Rückfrage zur Lieferung",
        ],
        Lang::Fr => &[
            "Réunion de l'équipe",
            "Facture du trimestre",
            "Café demain ?",
            "Proposition définitive",
            "Été 2023 – planning",
        ],
        Lang::Ru => &[
            "Отчёт за квартал",
            "Встреча в пятницу",
            "Привет из Москвы",
            "Договор",
        ],
        Lang::Ja => JA_SUBJECTS,
    }
}

/// The word list of a language.
fn words(lang: Lang) -> &'static [&'static str] {
    match lang {
        Lang::En => EN,
        Lang::De => DE,
        Lang::Fr => FR,
        Lang::Ru => RU,
        Lang::Ja => JA,
    }
}

/// Charsets a text in this language can be written in, besides UTF-8.
pub fn legacy_charsets(lang: Lang) -> &'static [Charset] {
    match lang {
        Lang::En => &[Charset::UsAscii],
        Lang::De | Lang::Fr => &[Charset::Latin1, Charset::Cp1252],
        Lang::Ru => &[Charset::Koi8R],
        Lang::Ja => &[Charset::Iso2022Jp, Charset::ShiftJis],
    }
}

/// One sentence.
pub fn sentence(rng: &mut Rng, lang: Lang) -> String {
    if lang == Lang::Ja {
        let n = rng.range(1, 3);
        return (0..n).map(|_| rng.word(JA)).collect();
    }
    let list = words(lang);
    let n = rng.range(5, 14) as usize;
    let mut s = String::new();
    for i in 0..n {
        let w = rng.word(list);
        if i == 0 {
            let mut cs = w.chars();
            if let Some(first) = cs.next() {
                s.extend(first.to_uppercase());
                s.push_str(cs.as_str());
            }
        } else {
            s.push(' ');
            s.push_str(w);
        }
    }
    let end = match (lang, rng.below(6)) {
        (Lang::Fr, 0) => " ?",
        (_, 0) => "?",
        (Lang::Fr, 1) => "…",
        _ => ".",
    };
    s.push_str(end);
    s
}

/// Text of roughly `target` bytes (UTF-8): paragraphs of wrapped lines joined by `\n`,
/// ending in `\n`. `from_lines` sprinkles in lines starting with `From `/`>From `.
pub fn paragraphs(rng: &mut Rng, lang: Lang, target: usize, from_lines: bool) -> String {
    let width = if lang == Lang::Ja { 36 } else { 72 };
    let mut out = String::with_capacity(target + 100);
    while out.len() < target {
        if from_lines && rng.chance(25) {
            out.push_str(rng.word(FROM_LINES));
            out.push('\n');
        }
        let n = rng.range(2, 6);
        let mut line = String::new();
        for _ in 0..n {
            for w in split_words(&sentence(rng, lang), lang) {
                if !line.is_empty() && line.chars().count() + w.chars().count() + 1 > width {
                    out.push_str(&line);
                    out.push('\n');
                    line.clear();
                }
                if !line.is_empty() && lang != Lang::Ja {
                    line.push(' ');
                }
                line.push_str(&w);
            }
        }
        if !line.is_empty() {
            out.push_str(&line);
            out.push('\n');
        }
        out.push('\n');
    }
    out
}

fn split_words(s: &str, lang: Lang) -> Vec<String> {
    if lang == Lang::Ja {
        // break Japanese text every few characters
        let chars: Vec<char> = s.chars().collect();
        chars.chunks(6).map(|c| c.iter().collect()).collect()
    } else {
        s.split(' ').map(str::to_owned).collect()
    }
}

/// Exactly `n` bytes of ASCII English text with CRLF line breaks (ending in CRLF when
/// `n >= 2`), for size-exact bench bodies. Never produces a line starting with `From `.
pub fn ascii_filler(rng: &mut Rng, n: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(n + 80);
    let mut col = 0usize;
    while out.len() + 2 < n {
        let w = rng.word(EN);
        if col > 0 && col + w.len() + 1 > 72 {
            out.extend_from_slice(b"\r\n");
            col = 0;
        }
        if col > 0 {
            out.push(b' ');
            col += 1;
        }
        out.extend_from_slice(w.as_bytes());
        col += w.len();
    }
    out.truncate(n.saturating_sub(2));
    // a truncation may leave a trailing CR of a cut CRLF
    if out.last() == Some(&b'\r') {
        out.pop();
        out.push(b'.');
    }
    if n >= 2 {
        out.extend_from_slice(b"\r\n");
    } else {
        out.resize(n, b'.');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filler_is_exact() {
        let mut rng = Rng::new(1);
        for n in [0usize, 1, 2, 3, 71, 72, 73, 74, 75, 1000, 4096, 65_537] {
            let f = ascii_filler(&mut rng, n);
            assert_eq!(f.len(), n);
            if n >= 2 {
                assert!(f.ends_with(b"\r\n"));
            }
            // CR only as part of CRLF
            for (i, &b) in f.iter().enumerate() {
                if b == b'\r' {
                    assert_eq!(f.get(i + 1), Some(&b'\n'));
                }
            }
        }
    }

    #[test]
    fn paragraphs_reach_target() {
        let mut rng = Rng::new(2);
        for lang in [Lang::En, Lang::De, Lang::Fr, Lang::Ru, Lang::Ja] {
            let t = paragraphs(&mut rng, lang, 2000, true);
            assert!(t.len() >= 2000);
            assert!(t.ends_with('\n'));
        }
    }
}
