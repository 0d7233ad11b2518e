"""What the bundled news sites publish: sites, articles, sidebars, and the answers tests expect."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

TOPIC_US_RUSSIA = "us-russia"
TOPIC_IRAQ_STRIKES = "iraq-strikes"
TOPIC_INDIA_DEFENCE = "india-defence"

Layout = Literal["portal", "broadsheet", "community"]


@dataclass(frozen=True)
class Teaser:
    """A headline pointing elsewhere, as shown in sidebars; ``blurb`` may be empty."""

    headline: str
    blurb: str = ""


@dataclass(frozen=True)
class FooterColumn:
    """One titled list of links in a site footer."""

    title: str
    links: tuple[str, ...]


@dataclass(frozen=True)
class DemoSite:
    """One simulated publication, served under ``/<slug>/``."""

    slug: str
    name: str
    tagline: str
    layout: Layout
    sections: tuple[str, ...]
    opinion_title: str
    opinion: tuple[Teaser, ...]
    newsletter_prompt: str
    footer_columns: tuple[FooterColumn, ...]
    footer_lines: tuple[str, ...]
    footer_links: tuple[str, ...]
    copyright: str

    @property
    def home_path(self) -> str:
        return f"/{self.slug}/"

    @property
    def feed_path(self) -> str:
        return f"/{self.slug}/rss.xml"

    @property
    def chrome_snippets(self) -> tuple[str, ...]:
        """Site-wide text outside any article (opinion teasers, newsletter, footer)."""
        teasers = tuple(text for teaser in self.opinion for text in (teaser.headline, teaser.blurb) if text)
        return (*teasers, self.newsletter_prompt, *self.footer_lines, self.copyright)


@dataclass(frozen=True)
class DemoArticle:
    """One article page, plus what a correct pipeline should make of it."""

    site: str
    slug: str
    title: str
    published: str
    body_paragraphs: tuple[str, ...]
    expected_topics: tuple[str, ...]
    syndicated_from: str | None
    author: str
    dateline: str
    section: str
    trending: tuple[Teaser, ...]
    latest: tuple[Teaser, ...]
    summary: str = ""
    image_caption: str = ""
    boilerplate: str = ""

    @property
    def path(self) -> str:
        return f"/{self.site}/news/{self.slug}.html"

    @property
    def published_at(self) -> datetime:
        return datetime.fromisoformat(self.published)

    @property
    def description(self) -> str:
        """The standfirst shown in feeds and meta tags; wire copy reuses the lead paragraph."""
        return self.summary or self.body_paragraphs[0]

    @property
    def sidebar_snippets(self) -> tuple[str, ...]:
        """Text this page shows beside the article, never part of it."""
        return tuple(
            text
            for teaser in (*self.trending, *self.latest)
            for text in (teaser.headline, teaser.blurb)
            if text
        )


DEVDISCOURSE = DemoSite(
    slug="devdiscourse",
    name="Devdiscourse",
    tagline="Development News Edition",
    layout="portal",
    sections=(
        "Agriculture",
        "Economy & Business",
        "Education",
        "Health",
        "International",
        "Science & Environment",
        "Technology",
    ),
    opinion_title="OPINION/BLOG/INTERVIEW",
    opinion=(
        Teaser(
            "Ghosts return on Social Media to haunt US Presidential Election 2020",
            "Although, social media platforms - Twitter, Facebook and Instagram are showing much alertness "
            "this time by deleting thousands of fake accounts but there is no clarity on exact number of "
            "fake accounts created to influence the elections. &#1...",
        ),
        Teaser(
            "Social media platforms rushed to control misinformation in US Census 2020",
            "Facing criticism of experts and pressure from the US agencies, the social media platforms "
            "Facebook, Twitter, and YouTube recently announced to take action against misinformation being "
            "spread on the US Census 2020. As the census data throu...",
        ),
        Teaser(
            "Pakistan’s neglect behind locust menace in India’s bordering districts",
            "Sindhs agriculture minister had suggested farmers to cook locusts in biryani and senior "
            "officials of Pakistan Government even called them not-harmful. The reports in Pakistani media "
            "since October are enough to indicate that inaction by Paki...",
        ),
        Teaser(
            "What JNU needs to learn from AMU, and Jamia Millia Islamia",
            "In the year 2019, three universities of the country witnessed violent protests. However, two of "
            "them retained trust and confidence of their students but JNU.&#160;...",
        ),
    ),
    newsletter_prompt="Subscribe to our Newsletter",
    footer_columns=(
        FooterColumn("SECTORS", ("Agriculture", "Economy & Business", "Education", "Health")),
        FooterColumn("EDITIONS", ("Development News", "Global")),
        FooterColumn("OTHER LINKS", ("About Us", "Advertise with Us", "Careers")),
        FooterColumn("OTHER PRODUCTS", ("VisionRI Connect", "Devdiscourse News App")),
    ),
    footer_lines=("Email: info@devdiscourse.com", "Phone: +91-130-6444012, +91-7027739813, 14, 15"),
    footer_links=("VisionRI", "Disclaimer", "Terms of use", "Privacy Policy"),
    copyright="© Copyright 2019",
)

DAILY_LEDGER = DemoSite(
    slug="dailyledger",
    name="The Daily Ledger",
    tagline="Independent news since 1921",
    layout="broadsheet",
    sections=("World", "Politics", "Business", "Energy", "Markets", "Opinion"),
    opinion_title="Opinion",
    opinion=(
        Teaser(
            "The decade the map of energy trade was redrawn",
            "New pipelines and new buyers have loosened old dependencies, but not always in the direction "
            "planners hoped.",
        ),
        Teaser(
            "Summit diplomacy needs more than a New Year card",
            "Warm holiday messages are cheap; a working arms-control channel is what both capitals lack.",
        ),
    ),
    newsletter_prompt="Get The Ledger Briefing: the day's essential stories in your inbox every morning.",
    footer_columns=(),
    footer_lines=(
        "Contact the newsroom: newsroom@dailyledger.example",
        "The Daily Ledger is a simulated publication bundled with newsfeed for testing.",
    ),
    footer_links=("About", "Corrections", "Terms", "Privacy"),
    copyright="© 2019 Daily Ledger Media Co. All rights reserved.",
)

HARBOUR_TIMES = DemoSite(
    slug="harbourtimes",
    name="The Harbour Times",
    tagline="News for Port Alder and the bay towns",
    layout="community",
    sections=("Local", "Health", "Technology", "Sport", "Weather"),
    opinion_title="Opinion",
    opinion=(
        Teaser(
            "Letters: the ferry timetable still ignores shift workers",
            "Readers write in about early sailings, parking fees and the new library hours.",
        ),
    ),
    newsletter_prompt="Sign up for the Harbour Times weekend digest.",
    footer_columns=(),
    footer_lines=(
        "The Harbour Times, 14 Quay Street, Port Alder. Tips: desk@harbourtimes.example",
        "The Harbour Times is a simulated publication bundled with newsfeed for testing.",
    ),
    footer_links=("Advertise", "Subscriptions", "Privacy"),
    copyright="© 2019 Harbour Times Publishing",
)

SITES: tuple[DemoSite, ...] = (DEVDISCOURSE, DAILY_LEDGER, HARBOUR_TIMES)

# Wire copy: every outlet that takes the ANI story prints these paragraphs unchanged.
_PUTIN_GREETING_PARAGRAPHS = (
    "Russian President Vladimir Putin on Monday invited his American counterpart Donald Trump to visit "
    "Moscow in the coming year and advocated for normalising relations between the two countries in his "
    'New Year message to the White House. "In a Christmas and New Year greeting message to President of '
    "the United States of America Donald Trump, Vladimir Putin noted that Russia and the US were "
    "historically responsible for ensuring global security and stability and that Moscow speaks in favour "
    "of normalising bilateral relations and establishing an equal dialogue based on the mutual respect of "
    "interests,\" Putin's office said in a statement cited by CNN.",
    '"The President of Russia also reaffirmed his invitation to Donald Trump to visit Moscow to take part '
    'in the celebrations of the 75th anniversary of Victory in the Great Patriotic War," the statement '
    "read. Putin's invitation and wishes come after the Kremlin on Sunday released a separate readout of a "
    'phone call between Trump and Putin in which the two discussed "matters of mutual interest" and '
    'reached an agreement to "continue bilateral cooperation in the fight against terrorism."',
    "Kremlin-provided statement of the call -- initiated by Russia and the first between Putin and Trump "
    'since July -- said that "Vladimir Putin thanked Donald Trump for the information shared via the '
    'special services that helped prevent terrorist acts in Russia," but did not provide additional '
    "details about what information the US had provided. Two Russian nationals, though, were detained on "
    "Friday based on information provided by the US, according to a statement issued by the Federal "
    "Security Service of Russia. They had intended to carry out terrorist attacks in St. Petersburg on the "
    "New Year's Eve, the Federal Security Service said.",
    "The White House, however so far, has not released its own readout of the call and has not provided "
    "additional comment on the conversation between the leaders. In November, Trump said that he was "
    "considering Putin's invitation to attend the Victory Day Parade -- widely seen as a celebration of "
    "Russian military power on the anniversary of the victory of allied nations over Nazi Germany in World "
    "War II -- that takes place in early May in Moscow.",
    "The last time an American president visited Russia was in 2013 when then-President Barack Obama took "
    "part in the G20 economic summit in St. Petersburg. (ANI)",
)

SEED_ARTICLE = DemoArticle(
    site="devdiscourse",
    slug="putin-advocates-normalising-ties-in-new-year-greetings-to-trump",
    title="Putin advocates normalising ties in New Year greetings to Trump",
    published="2019-12-30T22:00:00+05:30",
    body_paragraphs=_PUTIN_GREETING_PARAGRAPHS,
    expected_topics=(TOPIC_US_RUSSIA,),
    syndicated_from=None,
    author="ANI",
    dateline="Washington DC",
    section="International",
    summary=_PUTIN_GREETING_PARAGRAPHS[0].split(' "In a Christmas', 1)[0],
    image_caption=(
        "Russian President Donald Trump and US President Donald Trump met on sidelines on G-20 Summit in "
        "Osaka in June. Image Credit: ANI"
    ),
    boilerplate=(
        "(This story has not been edited by Devdiscourse staff and is auto-generated from a syndicated feed.)"
    ),
    trending=(
        Teaser("UPDATE 4-U.S. strikes in Iraq, Syria target Iranian-backed Shi'ite Muslim militia group"),
        Teaser("VisionRI served Legal Notice to Senior Ex-employee for data theft and misuse"),
        Teaser("UPDATE 1-Vodafone Hutchison Australia partners with Nokia to kick off 5G rollout"),
        Teaser(
            "Health News Summary: Patients don't care about provider religious ties, expect all needed care"
        ),
    ),
    latest=(
        Teaser(
            "Looking forward to advancing US-India defence partnership: Ambassador Juster on General "
            "Rawat's appointment as CDS",
            "US Ambassador to India Kenneth Juster on Monday congratulated Indian Army Chief General Bipin "
            "Rawat for being appointed as the first Chief of Defence Staff CDS and said he is looking "
            "forward to intensifying defence cooperation between the t...",
        ),
        Teaser(
            "Iran-backed Iraqi militia vows revenge to US airstrikes",
            "An Iranian-backed militia said Monday that the death toll from US military strikes in Iraq and "
            "Syria against its fighters has risen to 25, vowing to exact revenge for the aggression of evil "
            "American ravens. The US attack the largest yet ta...",
        ),
        Teaser(
            "General Rawat's appointment as CDS a matter of pride and honour for Uttarakhand: CM",
            "Uttarakhand Chief Minister Trivevdra Singh Rawat on Monday congratulated Army Chief Gen Bipin "
            "Rawat on his appointment as the countrys first Chief of Defence Staff. Congratulating General "
            "Rawat on his appointment to the post, the chief mini...",
        ),
        Teaser(
            "UPDATE 2-Iraq condemns U.S. air strikes as unacceptable and dangerous",
            "Iraqi Prime Minister Adel Abdul Mahdi on Monday condemned U.S. air strikes on Iranian-backed "
            "Iraqi militia bases, a move that could plunge Iraq further into the heart of a proxy conflict "
            "between Washington and Tehran. The United States mili...",
        ),
    ),
)

SYNDICATED_COPY = DemoArticle(
    site="dailyledger",
    slug="putin-invites-trump-to-moscow-new-year-message",
    title="Putin invites Trump to Moscow, calls for normal ties in New Year message",
    published="2019-12-30T17:05:00+00:00",
    body_paragraphs=_PUTIN_GREETING_PARAGRAPHS,
    expected_topics=(TOPIC_US_RUSSIA,),
    syndicated_from=SEED_ARTICLE.path,
    author="ANI",
    dateline="WASHINGTON",
    section="World",
    summary="The Kremlin says the Russian leader renewed his offer for the U.S. president to attend May's "
    "Victory Day celebrations.",
    boilerplate="Disclaimer: This article is from a syndicated wire feed and has not been edited by Daily "
    "Ledger staff.",
    trending=(
        Teaser(
            "Pentagon weighs next steps after raids on Kataib Hezbollah depots",
            "Commanders have drawn up options for further air strikes in Iraq if rocket fire on bases "
            "continues.",
        ),
        Teaser(
            "New defence chief faces the job of making India's three services plan as one",
            "India's first Chief of Defence Staff inherits turf battles between the army, navy and air "
            "force.",
        ),
    ),
    latest=(
        Teaser(
            "Baghdad protesters denounce both Washington and Tehran",
            "Demonstrators in Tahrir Square say the American strikes on militia bases in Iraq put civilians "
            "at risk.",
        ),
        Teaser(
            "Army chief hands over command ahead of move to new tri-service post",
            "A farewell parade in New Delhi marked General Rawat's last day at the head of the Indian army.",
        ),
    ),
)

IRAQ_STRIKES = DemoArticle(
    site="dailyledger",
    slug="us-jets-strike-iran-backed-militia-in-iraq-and-syria",
    title="U.S. jets strike Iran-backed militia sites in Iraq and Syria after deadly rocket attack",
    published="2019-12-30T14:40:00+00:00",
    body_paragraphs=(
        "American aircraft struck five facilities belonging to Kataib Hezbollah, an Iran-backed Iraqi "
        "militia, on Sunday, in what the Pentagon described as a response to a rocket barrage that killed a "
        "U.S. civilian contractor at a base near Kirkuk two days earlier.",
        "Three of the targets were in western Iraq and two were across the border in eastern Syria, "
        "according to a Defense Department statement. Officials said the sites were weapons depots and "
        "command posts the group had used to plan attacks on bases that host coalition troops.",
        "The militia said on Monday that at least 25 of its fighters had been killed and dozens more "
        "wounded, making the raids the deadliest American action against an Iraqi armed faction in years. "
        "Its commanders promised to retaliate, and crowds gathered for funerals in Baghdad and in several "
        "southern cities.",
        "Baghdad's caretaker government denounced the raids as a breach of Iraqi sovereignty and said it "
        "would reconsider the terms under which foreign forces operate in the country. Iraqi officials "
        "warned that the strikes risked dragging the country deeper into the rivalry between Washington and "
        "Tehran.",
        "Iran's foreign ministry called the bombing an act of terrorism and said American forces should "
        "leave the region. U.S. officials, speaking on condition of anonymity, said further action was "
        "possible if attacks on bases continued.",
        "About 5,000 American troops remain in Iraq to train local forces and to support operations against "
        "the remnants of Islamic State. Rocket fire on bases and on the diplomatic quarter in Baghdad has "
        "grown more frequent since October, though until last week none of it had killed an American.",
    ),
    expected_topics=(TOPIC_IRAQ_STRIKES,),
    syndicated_from=None,
    author="Daniel Whitcombe",
    dateline="BAGHDAD",
    section="World",
    summary="The Pentagon says the raids answered a rocket barrage that killed an American contractor near "
    "Kirkuk.",
    trending=(
        Teaser(
            "Putin's New Year note to Trump revives talk of a Moscow visit",
            "The Kremlin says Putin's invitation for Trump to attend May's Victory Day parade still stands.",
        ),
        Teaser(
            "India names General Bipin Rawat as its first Chief of Defence Staff",
            "The outgoing Indian army chief will head a new department of military affairs.",
        ),
    ),
    latest=(
        Teaser(
            "Russia thanks U.S. for intelligence that foiled New Year terror plot",
            "Moscow says information from Washington led to the arrest of two men in St. Petersburg.",
        ),
        Teaser(
            "Markets end the decade within sight of record highs",
            "Equities posted their strongest year since 2013 despite the trade war.",
        ),
        Teaser(
            "Gas will keep flowing west after last-minute transit agreement",
            "Negotiators in Vienna settled the terms days before the old contract expired.",
        ),
    ),
)

GAS_TRANSIT = DemoArticle(
    site="dailyledger",
    slug="russia-and-ukraine-sign-five-year-gas-transit-deal",
    title="Russia and Ukraine sign five-year gas transit deal days before contract expiry",
    published="2019-12-31T08:15:00+00:00",
    body_paragraphs=(
        "Russia and Ukraine have signed a five-year agreement that keeps Russian natural gas flowing through "
        "Ukrainian pipelines to Europe, ending months of uncertainty just before the previous contract was "
        "due to lapse at midnight on December 31.",
        "Under the deal, Gazprom will ship at least 65 billion cubic metres through Ukraine in 2020 and 40 "
        "billion cubic metres a year from 2021 to 2024, with an option to extend. Naftogaz, the Ukrainian "
        "state energy company, will collect transit fees that analysts put at several billion dollars over "
        "the life of the contract.",
        "As part of the settlement, Gazprom agreed to pay about $2.9 billion that a Stockholm arbitration "
        "tribunal had awarded to Naftogaz, and the two companies agreed to drop most of their remaining "
        "claims against each other.",
        "European Union officials, who hosted several rounds of talks in Brussels, welcomed the outcome. A "
        "supply crisis in January 2009, when flows through Ukraine stopped for nearly two weeks, left parts "
        "of south-eastern Europe without heating and still shapes the bloc's energy policy.",
        "The agreement comes as Russia prepares to start deliveries through new pipelines that bypass "
        "Ukraine, including TurkStream under the Black Sea. Ukrainian officials say the guaranteed volumes "
        "matter both for the national budget and for the upkeep of a transit network built in Soviet times.",
        "Energy traders said the deal removed a risk that had kept European wholesale prices elevated during "
        "the autumn. Storage sites across the continent are unusually full after a mild start to the winter.",
    ),
    expected_topics=(),
    syndicated_from=None,
    author="Irina Volkova",
    dateline="KYIV",
    section="Energy",
    summary="Gazprom commits to minimum volumes through Ukrainian pipelines until 2024 and settles a "
    "long-running legal dispute.",
    trending=(
        Teaser(
            "Trump weighs Putin's invitation to the Victory Day parade in Moscow",
            "White House aides have not said whether Trump will travel to Moscow in May.",
        ),
        Teaser(
            "Pentagon warns of more strikes if militia attacks on U.S. troops in Iraq continue",
            "Officials describe Sunday's air strikes in Iraq and Syria as a message to Tehran.",
        ),
    ),
    latest=(
        Teaser(
            "India's new Chief of Defence Staff to oversee theatre command plans",
            "The reform is meant to end decades of separate planning by India's army, navy and air force.",
        ),
        Teaser(
            "Kremlin and White House discuss counter-terrorism cooperation",
            "Putin thanked Trump for a U.S. tip-off that helped prevent attacks in Russia, the Kremlin said.",
        ),
    ),
)

INDIA_DEFENCE = DemoArticle(
    site="devdiscourse",
    slug="general-bipin-rawat-named-india-first-chief-of-defence-staff",
    title="General Bipin Rawat named India's first Chief of Defence Staff",
    published="2019-12-30T20:15:00+05:30",
    body_paragraphs=(
        "The government on Monday appointed outgoing Army chief General Bipin Rawat as the country's first "
        "Chief of Defence Staff, a post created to bring the Army, Navy and Air Force under a single "
        "military adviser to the defence minister.",
        "Gen Rawat, who retires as Chief of Army Staff on Tuesday, will take charge of the new office on "
        "January 1. The service rules were amended last week to let the holder of the post serve until the "
        "age of 65, which gives him a tenure of about three years.",
        "The Chief of Defence Staff will head a new Department of Military Affairs inside the defence "
        "ministry, which the Union Cabinet approved on December 24. The department will handle matters "
        "relating to the three services, including training, staffing and purchases other than major capital "
        "acquisitions.",
        "A central part of the mandate is jointness: getting the services to plan, train and buy equipment "
        "together instead of in separate silos. Officials said the new chief is expected to work towards "
        "integrated theatre commands, a reorganisation that military planners have debated for two decades.",
        "The CDS will be a four-star officer and first among equals with the three service chiefs, but will "
        "not command troops in operations. He will also be the permanent chairman of the Chiefs of Staff "
        "Committee and military adviser to the Nuclear Command Authority.",
        "A single point of military advice was first recommended by the committee that reviewed the 1999 "
        "Kargil conflict, and the Prime Minister announced the post in his Independence Day speech in "
        "August. General Manoj Mukund Naravane, the vice chief, will succeed Gen Rawat as Army chief.",
    ),
    expected_topics=(TOPIC_INDIA_DEFENCE,),
    syndicated_from=None,
    author="Devdiscourse News Desk",
    dateline="New Delhi",
    section="International",
    trending=(
        Teaser("Putin invites Trump to Moscow for Victory Day, seeks normal ties"),
        Teaser("Iraqi militia buries fighters killed in U.S. raids near Al-Qaim"),
        Teaser("Vodafone and Nokia switch on first 5G sites in Sydney"),
    ),
    latest=(
        Teaser(
            "Kremlin thanks Washington for tip-off that foiled St. Petersburg plot",
            "Two men were detained on Friday after information passed on by US intelligence, the FSB said.",
        ),
        Teaser(
            "Militia leaders in Baghdad vow revenge for US strikes",
            "Funerals were held in Baghdad for fighters killed in the US air strikes in Iraq and Syria.",
        ),
        Teaser(
            "Onion prices ease as imported stocks reach Indian markets",
            "Retail rates in Delhi slipped below 80 rupees a kilogram for the first time in weeks.",
        ),
    ),
)

ONION_PRICES = DemoArticle(
    site="devdiscourse",
    slug="onion-prices-begin-to-ease-as-imported-stocks-arrive",
    title="Onion prices begin to ease as imported stocks reach Indian markets",
    published="2019-12-28T16:30:00+05:30",
    body_paragraphs=(
        "Retail onion prices in several Indian cities slipped this week for the first time in more than a "
        "month as imported consignments and the first arrivals of the late kharif crop reached wholesale "
        "markets.",
        "In Delhi, onions that sold for well over 100 rupees a kilogram in early December were available for "
        "around 80 rupees in neighbourhood markets on Saturday, traders said. Wholesale rates at Lasalgaon "
        "in Maharashtra, the country's largest onion market, fell for a fifth straight session.",
        "Prices had soared after unseasonal rain and a delayed monsoon damaged crops in Maharashtra, "
        "Karnataka and Madhya Pradesh, cutting supply just as stocks from the previous harvest were running "
        "low.",
        "The government banned exports in September, capped the quantities traders may hold, and arranged "
        "imports through a state-run trading company, with shipments arriving from Egypt, Turkey and "
        "Afghanistan. Several state governments opened subsidised sale counters where buyers queued for "
        "hours.",
        "Farmers' groups complain that the stock limits depress the prices they receive now that fresh "
        "produce is coming in, and have asked for the export ban to be reviewed once markets settle.",
        "Traders expect prices to keep falling through January as the harvest picks up, though they said "
        "imported onions, which many households find milder and larger than local varieties, have been slow "
        "to sell in some cities.",
    ),
    expected_topics=(),
    syndicated_from=None,
    author="Devdiscourse News Desk",
    dateline="New Delhi",
    section="Agriculture",
    trending=(
        Teaser("Army chief Bipin Rawat tipped to become first Chief of Defence Staff"),
        Teaser("Rocket attack near Kirkuk kills US contractor, wounds service members"),
        Teaser("Trump and Putin discuss counter-terrorism cooperation in phone call"),
    ),
    latest=(
        Teaser(
            "Cabinet clears creation of Department of Military Affairs",
            "The new department, headed by the Chief of Defence Staff, will look after India's army, navy "
            "and air force.",
        ),
        Teaser(
            "Kataib Hezbollah blamed for string of rocket attacks on bases",
            "US officials say the militia has fired rockets at bases in Iraq since October, and warned of "
            "air strikes in response.",
        ),
        Teaser(
            "Defence ministry sets out role of India's new tri-service chief",
            "The Chief of Defence Staff will advise the defence minister on matters involving India's armed "
            "forces.",
        ),
    ),
)

SMART_SPEAKERS = DemoArticle(
    site="harbourtimes",
    slug="smart-speakers-top-holiday-wish-lists",
    title="Smart speakers top holiday wish lists, but privacy worries follow them home",
    published="2019-12-27T11:00:00+00:00",
    body_paragraphs=(
        "Voice-controlled speakers were among the most-gifted gadgets this holiday season, retailers say, "
        "with discounted entry-level models selling out at several large chains in the week before "
        "Christmas.",
        "Industry analysts estimate that well over a hundred million of the devices are now in homes "
        "worldwide. Most are made by a handful of large technology companies that sell the hardware close to "
        "cost and hope to earn money from shopping, music subscriptions and advertising.",
        "Their popularity has been accompanied by growing unease about what they hear. This year several "
        "manufacturers acknowledged that contractors had listened to samples of recorded commands to improve "
        "speech recognition, a practice few customers knew about.",
        "Since then the companies have added settings that delete recordings automatically or opt users out "
        "of human review. Consumer advocates say the controls are an improvement but are often buried "
        "several menus deep.",
        "For people setting up a new device, security researchers suggest a few simple steps: go through the "
        "privacy settings in the companion app, use the physical mute button when the speaker is not needed, "
        "and switch off voice purchasing in homes with children.",
        "Retailers expect demand to hold up in the new year as voice assistants are built into more "
        "televisions, cars and kitchen appliances.",
    ),
    expected_topics=(),
    syndicated_from=None,
    author="Ruth Okafor",
    dateline="PORT ALDER",
    section="Technology",
    trending=(
        Teaser(
            "Putin and Trump trade holiday greetings as Kremlin pushes for a summit",
            "Moscow says relations with Washington should be put back on a normal footing.",
        ),
        Teaser(
            "Iraq strikes: what we know about the militia the U.S. targeted",
            "Kataib Hezbollah says 25 of its fighters died in the U.S. air strikes in Iraq and Syria.",
        ),
    ),
    latest=(
        Teaser(
            "India's defence reform: a new chief for three services",
            "The tri-service post for India's armed forces was first proposed after the Kargil conflict.",
        ),
        Teaser(
            "Kremlin thanks White House for terror tip-off",
            "Russia says a warning passed on by U.S. intelligence helped stop a plot in St. Petersburg.",
        ),
        Teaser(
            "Ferry services cut back for the holiday week",
            "The bay crossing will run an hourly timetable until January 2.",
        ),
    ),
)

FLU_SEASON = DemoArticle(
    site="harbourtimes",
    slug="hospitals-report-early-surge-in-flu-cases",
    title="Hospitals report early surge in flu cases as winter sets in",
    published="2019-12-27T15:20:00+00:00",
    body_paragraphs=(
        "Hospitals in Port Alder and the surrounding county are treating more patients with influenza than "
        "at any point in the last three winters, health officials said on Friday, as the seasonal outbreak "
        "arrived several weeks earlier than usual.",
        "The county health department recorded 412 laboratory-confirmed cases in the week before Christmas, "
        "more than double the figure for the same week last year. Most infections were caused by an "
        "influenza B strain that tends to hit children and young adults hardest.",
        "Emergency departments at the two largest hospitals reported waits of up to six hours on Thursday "
        "evening, and one of them postponed a number of planned operations to free beds.",
        "Officials urged residents who have not yet been vaccinated to get the jab, saying it was not too "
        "late for it to offer protection. Pharmacies across the county still have stock, and clinics will "
        "run extra sessions on Saturday mornings in January.",
        "Doctors asked people with mild symptoms to stay at home, drink plenty of fluids and keep away from "
        "elderly relatives in care homes until they recover, rather than going to an emergency department.",
    ),
    expected_topics=(),
    syndicated_from=None,
    author="Sam Whitlow",
    dateline="PORT ALDER",
    section="Health",
    trending=(
        Teaser(
            "US air strikes on Iraqi militia draw condemnation from Baghdad",
            "Iraq's government says the U.S. air strikes on militia bases violated its sovereignty.",
        ),
        Teaser(
            "Russia's Putin sends New Year wishes to Trump, renews Moscow invitation",
            "Putin and Trump spoke by phone over the weekend, according to the Kremlin.",
        ),
    ),
    latest=(
        Teaser(
            "General Rawat to take over as India's Chief of Defence Staff on January 1",
            "The Indian army chief becomes the first officer to hold the tri-service post.",
        ),
        Teaser(
            "Pentagon says more air strikes in Iraq are possible",
            "U.S. officials warn militia groups in Iraq that further strikes will follow any new rocket "
            "attack.",
        ),
    ),
)

ARTICLES: tuple[DemoArticle, ...] = (
    SEED_ARTICLE,
    INDIA_DEFENCE,
    ONION_PRICES,
    SYNDICATED_COPY,
    IRAQ_STRIKES,
    GAS_TRANSIT,
    SMART_SPEAKERS,
    FLU_SEASON,
)

# Text that appears on pages only outside the article, so extraction must never return it.
SIDEBAR_SNIPPETS: tuple[str, ...] = tuple(
    dict.fromkeys(
        [
            *(text for article in ARTICLES for text in article.sidebar_snippets),
            *(text for site in SITES for text in site.chrome_snippets),
        ]
    )
)


def articles_of(site_slug: str) -> tuple[DemoArticle, ...]:
    """The site's articles, newest first, as its home page and feed list them."""
    own = (article for article in ARTICLES if article.site == site_slug)
    return tuple(sorted(own, key=lambda article: article.published_at, reverse=True))
