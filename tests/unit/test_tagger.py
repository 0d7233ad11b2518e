"""Topic tagger: the shipped taxonomy on real and invented articles, term syntax, and taxonomy loading."""

from __future__ import annotations

import pickle
import re
from pathlib import Path

import pytest

from pipeline.tag import (
    DEFAULT_TAXONOMY_PATH,
    TAGGER_VERSION,
    Taxonomy,
    TaxonomyError,
    load_taxonomy,
    parse_taxonomy,
    tag_article,
)
from pipeline.tag.tagger import MAX_EVIDENCE_CHARS, MAX_EVIDENCE_WINDOWS


@pytest.fixture(scope="module")
def taxonomy() -> Taxonomy:
    return load_taxonomy(DEFAULT_TAXONOMY_PATH)


def topic_ids(title: str, text: str, taxonomy: Taxonomy) -> set[str]:
    return {tag["id"] for tag in tag_article(title, text, taxonomy)}


# The seed page (devdiscourse, 30 Dec 2019): the article body as extraction should deliver it.
SEED_TITLE = "Putin advocates normalising ties in New Year greetings to Trump"
SEED_BODY = """\
Russian President Vladimir Putin on Monday invited his American counterpart Donald Trump to visit Moscow \
in the coming year and advocated for normalising relations between the two countries in his New Year \
message to the White House. "In a Christmas and New Year greeting message to President of the United \
States of America Donald Trump, Vladimir Putin noted that Russia and the US were historically responsible \
for ensuring global security and stability and that Moscow speaks in favour of normalising bilateral \
relations and establishing an equal dialogue based on the mutual respect of interests," Putin's office \
said in a statement cited by CNN.

"The President of Russia also reaffirmed his invitation to Donald Trump to visit Moscow to take part in \
the celebrations of the 75th anniversary of Victory in the Great Patriotic War," the statement read. \
Putin's invitation and wishes come after the Kremlin on Sunday released a separate readout of a phone call \
between Trump and Putin in which the two discussed "matters of mutual interest" and reached an agreement \
to "continue bilateral cooperation in the fight against terrorism."

Kremlin-provided statement of the call -- initiated by Russia and the first between Putin and Trump since \
July -- said that "Vladimir Putin thanked Donald Trump for the information shared via the special services \
that helped prevent terrorist acts in Russia," but did not provide additional details about what \
information the US had provided. Two Russian nationals, though, were detained on Friday based on \
information provided by the US, according to a statement issued by the Federal Security Service of Russia. \
They had intended to carry out terrorist attacks in St. Petersburg on the New Year's Eve, the Federal \
Security Service said.

The White House, however so far, has not released its own readout of the call and has not provided \
additional comment on the conversation between the leaders. In November, Trump said that he was \
considering Putin's invitation to attend the Victory Day Parade -- widely seen as a celebration of Russian \
military power on the anniversary of the victory of allied nations over Nazi Germany in World War II -- \
that takes place in early May in Moscow.

The last time an American president visited Russia was in 2013 when then-President Barack Obama took part \
in the G20 economic summit in St. Petersburg. (ANI)
"""

SEED_SIDEBAR_HEADLINES = """\
UPDATE 4-U.S. strikes in Iraq, Syria target Iranian-backed Shi'ite Muslim militia group
Looking forward to advancing US-India defence partnership: Ambassador Juster on General Rawat's \
appointment as CDS
UPDATE 2-Iraq condemns U.S. air strikes as unacceptable and dangerous
"""

SEED_SIDEBAR_TEASERS = """\
US Ambassador to India Kenneth Juster on Monday congratulated Indian Army Chief General Bipin Rawat for \
being appointed as the first Chief of Defence Staff CDS and said he is looking forward to intensifying \
defence cooperation between the t...
An Iranian-backed militia said Monday that the death toll from US military strikes in Iraq and Syria \
against its fighters has risen to 25, vowing to exact revenge for the aggression of evil American ravens.
"""


SEED_FILE = Path("/work/shared/seeds/000_019ac7a64bfef122.txt")


class TestSeedArticle:
    @pytest.mark.skipif(not SEED_FILE.is_file(), reason="seed pages are only present in the dev workspace")
    def test_embedded_copy_matches_the_seed_page(self) -> None:
        page = SEED_FILE.read_text(encoding="utf-8")

        copied = SEED_BODY + SEED_SIDEBAR_HEADLINES + SEED_SIDEBAR_TEASERS

        for paragraph in filter(None, copied.split("\n")):
            assert paragraph in page

    def test_extracted_article_is_us_russia_only(self, taxonomy: Taxonomy) -> None:
        tags = tag_article(SEED_TITLE, SEED_BODY, taxonomy)

        assert [tag["id"] for tag in tags] == ["us-russia"]
        evidence = tags[0]["evidence"]
        assert evidence[0].startswith("terms: ")
        assert "Putin" in evidence[0]
        assert "Trump" in evidence[0]
        assert evidence[1] == f"title: {SEED_TITLE}"

    def test_sidebar_headlines_would_add_iraq_strikes(self, taxonomy: Taxonomy) -> None:
        # Why extraction must run before tagging: page chrome carries other stories' topics.
        text = SEED_BODY + "\n" + SEED_SIDEBAR_HEADLINES

        assert topic_ids(SEED_TITLE, text, taxonomy) == {"us-russia", "iraq-strikes"}

    def test_sidebar_with_teasers_would_add_india_defence_too(self, taxonomy: Taxonomy) -> None:
        text = SEED_BODY + "\n" + SEED_SIDEBAR_HEADLINES + SEED_SIDEBAR_TEASERS

        assert topic_ids(SEED_TITLE, text, taxonomy) == {"us-russia", "iraq-strikes", "india-defence"}


# Invented articles: (title, body, expected topic ids).
POSITIVES = {
    "us-russia: foreign ministers meet": (
        "Pompeo and Lavrov clash over sanctions in Sochi talks",
        "US Secretary of State Mike Pompeo met Russian Foreign Minister Sergei Lavrov in Sochi on Tuesday. "
        "The two men said they disagreed on Venezuela but wanted to keep talking about arms control. "
        "Pompeo told reporters Washington would keep sanctions on Moscow in place until Crimea is returned. "
        "Lavrov said the Kremlin was open to a summit if the United States respected Russian interests.",
        {"us-russia"},
    ),
    "us-russia: sanctions bill, no title hit": (
        "Sanctions bill clears Senate committee",
        "The US Senate foreign relations committee approved new sanctions on Russian energy companies on "
        "Wednesday. Senators said the measures answered Moscow's meddling in the midterm elections, which "
        "the State Department has documented in detail. The bill now goes to the full chamber.\n"
        "The Kremlin called the proposal hostile and promised a proportionate response.",
        {"us-russia"},
    ),
    "us-russia: leaders' phone call": (
        "Trump and Putin discuss counter-terrorism by phone",
        "President Donald Trump spoke with Vladimir Putin by telephone on Sunday, the Kremlin said. "
        "The Russian leader thanked the American president for intelligence that helped foil a plot in "
        "St. Petersburg. Neither side mentioned arms control.",
        {"us-russia"},
    ),
    "iraq-strikes: US strikes on militia": (
        "U.S. strikes Iran-backed militia in Iraq and Syria",
        "American F-15 jets struck five sites used by Kataib Hezbollah in western Iraq and eastern Syria on "
        "Sunday, the Pentagon said. The air strikes hit weapons depots and command posts near Al-Qaim, on "
        "the Iraqi side of the border. Iraqi officials said at least 25 fighters had been killed.",
        {"iraq-strikes"},
    ),
    "iraq-strikes: rocket attack on a base": (
        "Rocket attack hits base near Baghdad airport",
        "Four Katyusha rockets landed inside a military base near Baghdad airport late on Tuesday, Iraqi "
        "security sources said. Nobody claimed the rocket attack, the third on the base this month. "
        "Washington has blamed earlier rocket fire in Iraq on Iran-backed groups.",
        {"iraq-strikes"},
    ),
    "iraq-strikes: Iranian missiles on a base": (
        "Iran retaliates against US forces",
        "Iran fired more than a dozen ballistic missiles at the Ain al-Asad air base in Iraq overnight. "
        "The missile attack caused no deaths, the Pentagon said. Iraq's prime minister said Tehran had "
        "warned him shortly before the strike.",
        {"iraq-strikes"},
    ),
    "iraq-strikes: Turkish raids, no title hit": (
        "Turkey steps up campaign against PKK",
        "Turkish warplanes carried out air-strikes on suspected PKK hideouts in the Qandil mountains of "
        "northern Iraq on Friday, the defence ministry in Ankara said. The raids followed an attack on a "
        "Turkish border post. Officials in Erbil said two civilians were hurt when a village near Sinjar was "
        "bombed. Ankara says the militants use Iraqi territory as a base.",
        {"iraq-strikes"},
    ),
    "india-defence: first CDS": (
        "Rawat takes charge as India's first Chief of Defence Staff",
        "General Bipin Rawat took charge on Wednesday as India's first Chief of Defence Staff, a post meant "
        "to bring the army, navy and air force closer together. As CDS he will also run a new department of "
        "military affairs. Defence Minister Rajnath Singh called it the biggest change to India's higher "
        "defence management in decades.",
        {"india-defence"},
    ),
    "india-defence: missile test": (
        "India test-fires air-launched BrahMos",
        "India successfully tested an air-launched BrahMos supersonic cruise missile on Tuesday. "
        "The weapon was fired from a Sukhoi-30 fighter of the Indian Air Force over the Bay of Bengal. "
        "Officials in New Delhi said the IAF would induct it next year.",
        {"india-defence"},
    ),
    "india-defence: naval drills, no title hit": (
        "Joint drills begin off Visakhapatnam",
        "The Indian Navy and the US Navy began a week of anti-submarine drills off the eastern coast on "
        "Monday. Four Indian warships and a submarine are taking part, officers said. Rajnath Singh said the "
        "exercise showed how far defence cooperation with Washington had come.",
        {"india-defence"},
    ),
}

HARD_NEGATIVES = {
    "Russia-Ukraine gas deal with one US mention": (
        "Russia and Ukraine seal gas transit deal",
        "Russia and Ukraine signed a five-year agreement on Monday to keep Russian gas flowing to Europe "
        "through Ukrainian pipes. Gazprom will pay Naftogaz $2.9 billion to settle an old arbitration case. "
        "The deal came days after the United States sanctioned firms laying Russia's Nord Stream 2 pipeline. "
        "European Commission officials, who brokered the talks, welcomed the outcome.",
        set(),
    ),
    "Belarus integration talks (lower-case 'us')": (
        "Lukashenko and Putin fail to agree on oil prices",
        "Belarusian President Alexander Lukashenko and Russian President Vladimir Putin ended talks in Sochi "
        "without a deal on oil supplies. Minsk wants to keep buying Russian crude at domestic prices. "
        "Protesters in Minsk carried banners reading 'Let us keep our independence' and warned that Moscow "
        "wanted to absorb their country. Putin told them to trust us, a Kremlin aide joked.",
        set(),
    ),
    "Navalny court case with a US embassy reaction": (
        "Moscow court fines Navalny's foundation",
        "A Moscow court on Thursday ordered Alexei Navalny's Anti-Corruption Foundation to pay heavy damages "
        "to a catering firm. Navalny, the Kremlin's best-known critic, called the ruling revenge for his "
        "investigations. Police searched the foundation's offices last week. The US embassy said it was "
        "troubled by growing pressure on Russian civil society.",
        set(),
    ),
    "impeachment story citing the Russia probe": (
        "House Democrats unveil articles of impeachment",
        "House Democrats on Tuesday unveiled two articles of impeachment against President Donald Trump. "
        "The charges centre on pressure on Ukraine to investigate a political rival. Democrats said the "
        "pattern echoed Trump's conduct during the Russia probe led by Robert Mueller. Trump called the "
        "process a witch hunt, just like the Russia hoax, and predicted a quick acquittal.",
        set(),
    ),
    "Iran protests with a general strike": (
        "Iranian protesters defy crackdown",
        "Protests over fuel prices spread to more than 100 Iranian cities over the weekend. Security forces "
        "fired on crowds in Tehran, rights groups said. Demonstrators denounced spending on allied militias "
        "in Iraq and Lebanon, while a general strike shut the bazaar in Tabriz.",
        set(),
    ),
    "Iran nuclear deal with Baghdad diplomacy": (
        "Iran steps further away from nuclear deal",
        "Iran said on Sunday it would no longer respect limits on uranium enrichment under the 2015 nuclear "
        "deal. European signatories urged Tehran to return to compliance. Diplomats in Baghdad said they "
        "hoped Washington and Tehran could still strike a deal. Iraq fears being caught between the two.",
        set(),
    ),
    "Syria-only air strikes": (
        "Air strikes pound Idlib as civilians flee",
        "Syrian and Russian warplanes carried out dozens of air strikes on towns in Idlib province on "
        "Thursday, rescuers said. More than 200,000 people have fled towards the Turkish border. Some "
        "families had already been displaced once, from Iraq, during the war against Islamic State.",
        set(),
    ),
    "Yemen air strikes with a history aside": (
        "Coalition air strikes kill civilians in Yemen",
        "Saudi-led coalition air strikes hit a market in northern Yemen on Tuesday, killing at least 17 "
        "people. The United Nations condemned the strikes. One analyst compared the raids to the bombing "
        "campaign against Iraq in 1991.",
        set(),
    ),
    "Basra teachers on strike": (
        "Teachers strike in Basra over unpaid salaries",
        "Teachers across Basra went on strike on Sunday to demand salaries unpaid for three months. "
        "The strike closed hundreds of schools in Iraq's oil capital, organisers said. Oil workers have "
        "threatened to join.",
        set(),
    ),
    "Baghdad protest crackdown": (
        "Death toll rises in Iraq protests",
        "Security forces struck protesters with batons and live rounds in central Baghdad on Friday. "
        "Medics said dozens of demonstrators were wounded when police struck a sit-in near Tahrir Square in "
        "Baghdad. The government promised an inquiry.",
        set(),
    ),
    "Iraq football win": (
        "Iraq stun Iran in qualifier",
        "A late strike from Mohanad Ali gave Iraq a 2-1 win over Iran in a World Cup qualifier in Amman. "
        "Iraqi fans celebrated in the streets of Baghdad until dawn.",
        set(),
    ),
    "fashion copy in navy": (
        "Lakme Fashion Week: designers bet on deep blues",
        "Navy was the colour of the season in Mumbai, where India's young designers showed tailored jackets "
        "and flowing saris. One label paired navy silk with gold thread, a nod to military uniforms. Buyers "
        "from across India ordered the navy lehengas before the week was out.",
        set(),
    ),
    "US Navy accident in the Indian Ocean": (
        "US Navy helicopter crashes in the Indian Ocean",
        "A US Navy Seahawk helicopter crashed into the Indian Ocean during a training flight on Thursday, "
        "the Pentagon said. All four crew were rescued by sailors from a nearby destroyer. The Indian Navy, "
        "which was exercising in the area, sent a patrol aircraft to help with the search.",
        set(),
    ),
    "India-US trade talks": (
        "India and US fail to close trade package",
        "Negotiators from India and the United States ended two days of talks in New Delhi without agreeing "
        "a limited trade package. Washington wants lower tariffs on medical devices, while India wants its "
        "trade preferences restored. Commerce Minister Piyush Goyal said talks would resume next month.",
        set(),
    ),
    "cricket with the Bharat Army": (
        "India crush West Indies to win series",
        "India beat the West Indies by 107 runs in Visakhapatnam to take the series 2-1. The Bharat Army, "
        "India's travelling fan club, sang through the final session. Kuldeep Yadav took a hat-trick as the "
        "visitors collapsed.",
        set(),
    ),
    "Assam floods with army rescue": (
        "Floods in Assam displace thousands",
        "Floods in India's northeastern state of Assam have displaced more than 400,000 people. The army was "
        "called in to evacuate villagers stranded on rooftops. Indian Air Force helicopters dropped food "
        "over cut-off areas. Rain is expected to ease by the weekend.",
        set(),
    ),
    "onion prices": (
        "Onion prices soar across India",
        "Retail onion prices in New Delhi crossed 100 rupees a kilo this week after unseasonal rain ruined "
        "crops. The government has banned exports and ordered imports from Egypt. Traders in India blamed an "
        "army of middlemen for hoarding stocks before the wedding season.",
        set(),
    ),
}


@pytest.mark.parametrize(("title", "text", "expected"), POSITIVES.values(), ids=POSITIVES.keys())
def test_positive_articles(title: str, text: str, expected: set[str], taxonomy: Taxonomy) -> None:
    assert topic_ids(title, text, taxonomy) == expected


@pytest.mark.parametrize(("title", "text", "expected"), HARD_NEGATIVES.values(), ids=HARD_NEGATIVES.keys())
def test_hard_negatives(title: str, text: str, expected: set[str], taxonomy: Taxonomy) -> None:
    assert topic_ids(title, text, taxonomy) == expected


def test_impeachment_story_is_saved_by_its_exclusions(taxonomy: Taxonomy) -> None:
    title, text, _ = HARD_NEGATIVES["impeachment story citing the Russia probe"]
    without_exclusions = text.replace("Russia probe led by Robert Mueller", "Russia talks").replace(
        "Russia hoax", "Russia talks"
    )

    assert topic_ids(title, without_exclusions, taxonomy) == {"us-russia"}


class TestScoringAndEvidence:
    def test_score_counts_matching_sentences_plus_title_and_lede_weights(self, taxonomy: Taxonomy) -> None:
        title = "Putin phones Trump"
        body = "Putin called Trump. The weather was mild. Putin thanked the White House."

        [tag] = tag_article(title, body, taxonomy)

        assert tag["score"] == 2.0 + 2.0 + 1.0

    def test_a_matching_lede_outweighs_a_passing_sentence(self, taxonomy: Taxonomy) -> None:
        lede = "New Delhi, Dec 30 (PTI) The Indian Navy has banned smartphones on its bases. "
        filler = "Officials said the rule takes effect at once. "
        passing = "Officials met. Later, an ex-Army officer from India spoke at a rally. "
        assert topic_ids("Phones banned", lede + filler * 3, taxonomy) == {"india-defence"}
        assert topic_ids("Phones banned", filler + lede + filler * 2, taxonomy) == set()
        assert topic_ids("Rally held", passing + filler, taxonomy) == set()

    def test_a_term_listed_in_every_group_qualifies_alone(self) -> None:
        taxonomy = parse_taxonomy(
            "version: '1'\ntopics:\n  - id: navy\n    description: d\n    groups:\n"
            "      country: [India, Indian Navy]\n      force: [navy, Indian Navy]\n"
        )
        assert topic_ids("", "The Indian Navy sailed.", taxonomy) == {"navy"}
        assert topic_ids("", "The navy sailed.", taxonomy) == set()

    def test_tags_are_sorted_by_score(self, taxonomy: Taxonomy) -> None:
        body = (
            "Officials briefed reporters. US jets struck targets in Iraq. "
            "Iraq said the air strikes killed 25. "
            "Trump spoke to Putin. The Kremlin said Putin and Trump agreed to talk again. "
            "Moscow and Washington will meet in Geneva."
        )

        tags = tag_article("", body, taxonomy)

        assert [(tag["id"], tag["score"]) for tag in tags] == [("us-russia", 3.0), ("iraq-strikes", 2.0)]

    def test_evidence_is_capped_and_trimmed(self, taxonomy: Taxonomy) -> None:
        filler = "The talks covered many unrelated subjects at very great length, " * 8
        long_sentence = f"{filler}and in the end Putin said Trump was welcome in Moscow."
        body = " ".join([long_sentence] * 6)

        [tag] = tag_article("", body, taxonomy)

        assert tag["score"] == 6.0 + 1.0  # six sentences, the first of them the lede
        assert len(tag["evidence"]) == 1 + MAX_EVIDENCE_WINDOWS
        assert all(len(line) <= MAX_EVIDENCE_CHARS for line in tag["evidence"])
        assert all("Putin" in line for line in tag["evidence"][1:])
        assert tag["evidence"][1].startswith("sentence: …")

    def test_empty_input_gives_no_tags(self, taxonomy: Taxonomy) -> None:
        assert tag_article("", "", taxonomy) == []
        assert tag_article("   ", "\n\n", taxonomy) == []

    def test_tagging_is_pure(self, taxonomy: Taxonomy) -> None:
        first = tag_article(SEED_TITLE, SEED_BODY, taxonomy)

        assert tag_article(SEED_TITLE, SEED_BODY, taxonomy) == first

    def test_abbreviations_do_not_split_sentences(self, taxonomy: Taxonomy) -> None:
        # If "U.S." ended a sentence, neither sentence would hold both sides.
        body = "Officials from the U.S. Moscow embassy met. The U.S. Ambassador greeted Lavrov."

        [tag] = tag_article("", body, taxonomy)

        assert tag["score"] == 2.0 + 1.0  # two sentences, the first of them the lede

    def test_taxonomy_survives_pickling_for_worker_processes(self, taxonomy: Taxonomy) -> None:
        copy = pickle.loads(pickle.dumps(taxonomy))

        assert tag_article(SEED_TITLE, SEED_BODY, copy) == tag_article(SEED_TITLE, SEED_BODY, taxonomy)

    def test_tagger_version_is_declared(self) -> None:
        assert re.fullmatch(r"\d+\.\d+\.\d+", TAGGER_VERSION)


# A small taxonomy for exercising the term syntax and windows directly.
SYNTAX_TAXONOMY = """\
version: "1"
topics:
  - id: probe
    description: term syntax probe
    window: {window}
    groups:
      one: [{term}]
      two: [anchor]
    exclude: [vetoed]
    ignore: [masked phrase]
"""


def probe(term: str, text: str, window: str = "sentence") -> bool:
    taxonomy = parse_taxonomy(SYNTAX_TAXONOMY.format(term=term, window=window))
    return bool(tag_article("", text, taxonomy))


class TestTermSyntax:
    @pytest.mark.parametrize("text", ["strike anchor", "Strikes anchor", "striking anchor", "anchor striked"])
    def test_regular_inflections_match(self, text: str) -> None:
        assert probe("strike", text)

    @pytest.mark.parametrize(("term", "text"), [("army", "armies anchor"), ("bomb", "bombed anchor")])
    def test_other_inflection_rules(self, term: str, text: str) -> None:
        assert probe(term, text)

    @pytest.mark.parametrize("text", ["striker anchor", "airstrikes anchor", "strikeout anchor"])
    def test_words_containing_the_term_do_not_match(self, text: str) -> None:
        assert not probe("strike", text)

    def test_prefix_term(self) -> None:
        assert probe("Russia*", "Russians anchor")
        assert probe("Russia*", "Russia's anchor")
        assert not probe("Russia*", "Prussia anchor")

    def test_exact_case_term(self) -> None:
        assert probe("=US", "US anchor")
        assert probe("=US", "US-India anchor")
        assert not probe("=US", "tell us anchor")
        assert not probe("=US", "anchor uses")

    def test_acronyms_are_not_inflected(self) -> None:
        assert probe("CDS", "cds anchor")
        assert not probe("CDS", "cdses anchor")

    def test_hyphens_and_spaces_are_interchangeable(self) -> None:
        assert probe("air strike", "air-strike anchor")
        assert probe("Al-Qaim", "al qaim anchor")
        assert probe("Hashd al-Shaabi", "Hashd al-Shaabi anchor")

    def test_punctuated_term(self) -> None:
        assert probe("U.S.", "the U.S. anchor")
        assert probe("U.S.", "U.S.-led anchor")

    def test_curly_apostrophe_matches_straight(self) -> None:
        assert probe("Kata'ib", "Kata’ib anchor")

    def test_exclude_vetoes_only_its_own_window(self) -> None:
        assert not probe("strike", "strike anchor vetoed.")
        assert probe("strike", "strike anchor vetoed. Strike anchor again.")

    def test_ignore_masks_terms_inside_the_phrase(self) -> None:
        assert not probe("masked", "masked phrase anchor")
        assert probe("masked", "masked anchor")

    def test_paragraph_window(self) -> None:
        two_sentences = "Strike here. Anchor there."
        two_paragraphs = "Strike here.\nAnchor there."

        assert not probe("strike", two_sentences, window="sentence")
        assert probe("strike", two_sentences, window="paragraph")
        assert not probe("strike", two_paragraphs, window="paragraph")


class TestTaxonomyFile:
    def test_default_taxonomy_ships_three_topics(self, taxonomy: Taxonomy) -> None:
        assert [topic.id for topic in taxonomy.topics] == ["us-russia", "iraq-strikes", "india-defence"]
        assert re.fullmatch(r"2026\.11\.1\+[0-9a-f]{8}", taxonomy.version)

    def test_user_added_topic_is_picked_up(self, tmp_path: Path) -> None:
        extra_topic = """
  - id: climate-summit
    description: UN climate negotiations.
    groups:
      climate: [climate, emissions, carbon]
      summit: [COP25, summit, negotiator*]
"""
        path = tmp_path / "taxonomy.yaml"
        path.write_text(DEFAULT_TAXONOMY_PATH.read_text(encoding="utf-8") + extra_topic, encoding="utf-8")
        text = "Negotiators in Madrid failed to agree rules for carbon markets at COP25 on Sunday."

        tags = tag_article("Climate summit ends in deadlock", text, load_taxonomy(path))

        assert [tag["id"] for tag in tags] == ["climate-summit"]
        assert tags[0]["score"] == 2.0

    def test_version_changes_with_content_but_not_comments(self, tmp_path: Path) -> None:
        original = DEFAULT_TAXONOMY_PATH.read_text(encoding="utf-8")
        path = tmp_path / "taxonomy.yaml"
        path.write_text("# a note from the editor\n" + original, encoding="utf-8")
        commented = load_taxonomy(path).version
        path.write_text(original.replace("        - Pompeo\n", "        - Pompeo\n        - Blinken\n"))
        edited = load_taxonomy(path).version

        assert commented == load_taxonomy(DEFAULT_TAXONOMY_PATH).version
        assert edited != commented
        assert edited.split("+")[0] == commented.split("+")[0] == "2026.11.1"

    @pytest.mark.parametrize(
        ("yaml_text", "expected_message"),
        [
            (
                'version: "1"\ntopics:\n  - id: broken\n    description: x\n',
                r"topic 'broken', field 'groups': Field required",
            ),
            (
                'version: "1"\ntopics:\n  - id: broken\n    description: x\n    window: page\n'
                "    groups: {a: [x]}\n",
                r"topic 'broken', field 'window'",
            ),
            (
                'version: "1"\ntopics:\n  - id: broken\n    description: x\n    threshold: -1\n'
                "    groups: {a: [x]}\n",
                r"topic 'broken', field 'threshold': Input should be greater than 0",
            ),
            (
                'version: "1"\ntopics:\n  - id: broken\n    description: x\n    groups: {a: [Rus*sia]}\n',
                r"topic 'broken', field 'groups': term 'Rus\*sia'",
            ),
            (
                'version: "1"\ntopics:\n  - id: broken\n    description: x\n    groups: {a: []}\n',
                r"topic 'broken', field 'groups': group 'a' has no terms",
            ),
            (
                'version: "1"\ntopics:\n  - id: broken\n    description: x\n    treshold: 2\n'
                "    groups: {a: [x]}\n",
                r"topic 'broken', field 'treshold': Extra inputs are not permitted",
            ),
            (
                'version: "1"\ntopics:\n  - description: x\n    groups: {a: [x]}\n',
                r"topic #1, field 'id': Field required",
            ),
            (
                'version: "1"\ntopics:\n  - {id: twice, description: x, groups: {a: [x]}}\n'
                "  - {id: twice, description: y, groups: {a: [y]}}\n",
                r"topic id 'twice' is used more than once",
            ),
            ("version: 2026.11\ntopics: []\n", r"field 'version': must be a quoted string"),
            ('version: "1"\ntopics:\n  - id: a\n    id: b\n', r"duplicate key 'id'"),
            ("version: [unclosed\n", r"not valid YAML"),
            ("- just\n- a list\n", r"must be a mapping"),
        ],
        ids=[
            "missing-groups",
            "bad-window",
            "negative-threshold",
            "bad-term",
            "empty-group",
            "misspelt-field",
            "missing-id",
            "duplicate-id",
            "unquoted-version",
            "duplicate-key",
            "bad-yaml",
            "not-a-mapping",
        ],
    )
    def test_malformed_taxonomy_is_reported_clearly(
        self, yaml_text: str, expected_message: str, tmp_path: Path
    ) -> None:
        path = tmp_path / "bad.yaml"
        path.write_text(yaml_text, encoding="utf-8")

        with pytest.raises(TaxonomyError, match=expected_message) as raised:
            load_taxonomy(path)
        assert str(path) in str(raised.value)

    def test_missing_file_is_reported(self, tmp_path: Path) -> None:
        with pytest.raises(TaxonomyError, match="cannot read taxonomy"):
            load_taxonomy(tmp_path / "absent.yaml")
