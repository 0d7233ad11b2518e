"""A reproducible benchmark news corpus: generated stories on several simulated sites with their own layouts.

Every page knows its true body, so extraction can be scored against it. Seven sites differ the way real
publishers do: a WordPress theme with a comments section, an ``<article>`` holding ``<aside>`` boxes, div
soup, a left rail printed before the story, a body interleaved with "Also read" boxes and captioned
pictures, a site without ``<article>`` tags that shows its dates only as visible text, and a magazine
layout with pull quotes. Around them: navigation, cookie banners, "Trending" / "Latest News" / "Most read"
teasers of other stories, newsletter boxes and footers. About ``syndicated_share`` of the pages are copies
of another site's story (same paragraphs, own headline and layout, maybe a wire credit line, sometimes a
paragraph dropped or an update appended).

    corpus = generate_corpus(2000, seed=7)
    corpus.pages[0].html, corpus.pages[0].body_paragraphs
    corpus.feed_xml("site-3", "http://127.0.0.1:8080")
    web.run_app(corpus_app(corpus))

The same seed always gives byte-identical pages: one ``random.Random`` drives everything, in a fixed order.
"""

from __future__ import annotations

import json
import random
import re
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from email.utils import format_datetime
from functools import cached_property
from html import escape

from aiohttp import web

FIRST_PUBLISHED = datetime(2024, 3, 1, 5, 0, tzinfo=UTC)
SPAN = timedelta(days=60)
FEED_ITEMS = 50

# --- vocabularies -----------------------------------------------------------------------------------


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


FIRST_NAMES = _words(
    "Aarav Priya Rahul Ananya Vikram Meera Arjun Kavya Rohan Sneha Imran Farah Tomas Elena Marcus Sofia "
    "Daniel Grace Oliver Amara Kwame Ngozi Haruto Yuki Min-jun Seo-yeon Lucas Camila Mateo Valentina Omar "
    "Leila Pavel Irina Henrik Astrid Luca Giulia Samuel Ruth Tariq Zainab Nikhil Lakshmi Chen Mei Arash "
    "Nadia Felix Hanna Diego Lucia Kofi Abena Ravi Divya Stefan Maria Joseph Aisha"
)
LAST_NAMES = _words(
    "Sharma Iyer Mehta Banerjee Reddy Kapoor Qureshi Haddad Novak Petrova Okafor Mensah Tanaka Sato Kim "
    "Park Silva Moreno Alvarez Rossi Bianchi Lindqvist Hansen Kowalski Nowak Schneider Weber Dubois Martin "
    "Osei Abubakar Nair Pillai Desai Chowdhury Rahman Fernando Perera Zhang Liu Wong Kaur Gill Bhatt "
    "Rao Menon Grant Fletcher Byrne Walsh Morgan Ellis Costa Pereira Mwangi Otieno Yilmaz Demir Aziz"
)
CITIES = (
    ("New Delhi", "India"),
    ("Mumbai", "India"),
    ("Bengaluru", "India"),
    ("Chennai", "India"),
    ("Kolkata", "India"),
    ("London", "Britain"),
    ("Manchester", "Britain"),
    ("Washington", "the United States"),
    ("Chicago", "the United States"),
    ("Brussels", "Belgium"),
    ("Berlin", "Germany"),
    ("Paris", "France"),
    ("Madrid", "Spain"),
    ("Rome", "Italy"),
    ("Warsaw", "Poland"),
    ("Oslo", "Norway"),
    ("Geneva", "Switzerland"),
    ("Tokyo", "Japan"),
    ("Seoul", "South Korea"),
    ("Jakarta", "Indonesia"),
    ("Manila", "the Philippines"),
    ("Singapore", "Singapore"),
    ("Sydney", "Australia"),
    ("Nairobi", "Kenya"),
    ("Lagos", "Nigeria"),
    ("Accra", "Ghana"),
    ("Johannesburg", "South Africa"),
    ("Cairo", "Egypt"),
    ("Dubai", "the United Arab Emirates"),
    ("Ankara", "Turkey"),
    ("Dhaka", "Bangladesh"),
    ("Colombo", "Sri Lanka"),
    ("Kathmandu", "Nepal"),
    ("Toronto", "Canada"),
    ("Mexico City", "Mexico"),
    ("Sao Paulo", "Brazil"),
)
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
MONTHS = _words("January February March April May June July August September October November December")
ORDINALS = ("second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth")
WHEN = ("on Monday", "on Tuesday", "on Wednesday", "on Thursday", "on Friday", "next week", "this week",
        "later this month", "before the end of the session", "on Saturday")  # fmt: skip
FIRMS = (
    "Vantor Industries", "Kestrel Capital", "Norden Steel", "Amberline Foods", "Soltrek Energy",
    "Bluepeak Securities", "Crestmark Bank", "Orion Textiles", "Meridian Motors", "Tallis Pharma",
    "Quillsoft", "Nimbus Labs", "Tessera Semiconductors", "Brightwave Telecom", "Orbix Systems",
    "Lumen Mobility", "Parallax AI", "Datavine", "Harlow Cement", "Greyfield Logistics",
)  # fmt: skip
PLACES = (
    "the Dunmar valley", "the Tesh crossing", "Hill 402", "the Marlin atoll", "the Kovra plateau",
    "Sector 7 of the frontier", "the Velan river delta", "the old Osprey airfield", "the Jandra pass",
    "the Suri lake district", "the Bel Ghat embankment", "the northern Karst ridge",
)  # fmt: skip


@dataclass(frozen=True)
class Topic:
    """One beat: who appears in its stories, what they are about, and how its sentences go."""

    name: str
    section: str
    orgs: tuple[str, ...]
    things: tuple[str, ...]
    roles: tuple[str, ...]
    sentences: tuple[str, ...]
    quotes: tuple[str, ...]
    headlines: tuple[str, ...]
    extras: dict[str, tuple[str, ...]] = field(default_factory=dict)


TOPICS = (
    Topic(
        name="politics",
        section="Politics",
        orgs=(
            "the ruling alliance",
            "the opposition bloc",
            "the election commission",
            "the upper house",
            "the cabinet",
            "the interior ministry",
            "the state assembly",
            "the governing coalition",
            "the parliamentary ethics panel",
            "the supreme court",
        ),
        things=(
            "the electoral reform bill",
            "the anti-defection law",
            "a no-confidence motion",
            "the budget session",
            "the delimitation exercise",
            "the campaign finance rules",
            "the caste census",
            "a snap election",
            "the lobbying register",
            "the citizenship rules",
        ),
        roles=(
            "the opposition leader",
            "the home minister",
            "a senior party strategist",
            "the chief whip",
            "the parliamentary affairs minister",
            "a spokesperson for the ruling party",
            "the speaker of the assembly",
            "a constitutional lawyer",
        ),
        sentences=(
            "{Org} is expected to put {thing} to a vote {when}, according to two officials familiar with "
            "the schedule.",
            "{person}, {role}, said the party had collected the signatures of {num} legislators in support "
            "of {thing}.",
            "The coalition's majority in {org} rests on {small} votes, a margin analysts call fragile.",
            "Protesters gathered outside the secretariat in {city} {when}, demanding that {thing} be "
            "withdrawn.",
            "{person} accused the government of rushing {thing} through without consulting the states.",
            "Turnout at the last election stood at {pct}, the highest recorded in the region since {year}.",
            "The motion needs the backing of at least {num} members before it can be admitted for debate.",
            "Several smaller parties have yet to say whether they will support {thing}.",
            "A spokesperson for {org} declined to comment on the timing of the vote.",
            "The row over {thing} has dominated the session for {small} weeks, stalling other legislation.",
            "Members of {org} met behind closed doors for {small} hours before issuing a two-line statement.",
            "{person} is the {ordinal} senior figure to break ranks over {thing} since {month}.",
        ),
        quotes=(
            "We will not allow this house to be used as a rubber stamp",
            "The numbers are on our side and the people know it",
            "This bill was drafted behind closed doors and it shows",
            "Every vote on this motion will be remembered at the next election",
            "We are open to amendments, but not to delay for its own sake",
            "The constitution is clear and we intend to follow it to the letter",
        ),
        headlines=(
            "{Org} to put {thing} to vote amid walkout",
            "{person} rejects {thing}, demands wider consultation",
            "Coalition faces test in {city} as {thing} heads for a vote",
            "Protests over {thing} enter {ordinal} day in {city}",
            "{Org} split over {thing} as deadline nears",
            "{person} quits post in row over {thing}",
        ),
    ),
    Topic(
        name="economy",
        section="Business",
        orgs=(
            "the central bank",
            "the finance ministry",
            "the statistics office",
            "the stock exchange",
            "the monetary policy committee",
            "the commerce ministry",
            "the tax department",
            "the chamber of commerce",
        ),
        things=(
            "inflation",
            "the benchmark lending rate",
            "the fiscal deficit",
            "retail sales",
            "factory output",
            "the trade gap",
            "bond yields",
            "fuel subsidies",
            "the sales tax",
            "the current account deficit",
        ),
        roles=(
            "the finance minister",
            "chief economist at {firm}",
            "the central bank governor",
            "a fund manager at {firm}",
            "the commerce secretary",
            "head of research at {firm}",
            "president of the chamber of commerce",
        ),
        sentences=(
            "{Org} held the benchmark rate at {pct} {when}, in line with the forecasts of {num} economists "
            "polled before the decision.",
            "Consumer prices rose {pct} in {month} from a year earlier, slower than the {pct2} pace "
            "recorded a month before.",
            "The government expects to raise {money} from the sale of its stake in a state-run lender.",
            "Exports fell for a {ordinal} straight month, dragged down by weaker demand for textiles and "
            "engineering goods.",
            "{person}, {role}, said the slowdown in {thing} was temporary and linked to the harvest cycle.",
            "Shares of {firm} closed {pct} higher after the company reported a quarterly profit of {money}.",
            "The benchmark index has gained {pct} so far this year, ahead of most regional markets.",
            "Analysts at {firm} cut their growth forecast for the fiscal year to {pct} from {pct2}.",
            "{Thing} came in at {pct} in {month}, according to data released by {org}.",
            "Small businesses in {city} say rising input costs have wiped out the gains of the past two "
            "quarters.",
            "{firm} said it would spend {money} over {small} years to expand its plant outside {city}.",
            "Traders said foreign investors sold shares worth {money} in the week to {day}.",
        ),
        quotes=(
            "The worst of the price pressure is behind us, but we are not declaring victory",
            "Demand is holding up better than the headline numbers suggest",
            "We would rather be early than late on this",
            "Households are still feeling the squeeze at the grocery till",
            "The policy stance remains entirely dependent on the data",
            "Nobody should read too much into a single month of figures",
        ),
        headlines=(
            "{Org} holds rates as inflation eases to {pct}",
            "{firm} profit jumps {pct} on strong demand",
            "Exports fall for {ordinal} month as global demand weakens",
            "Trade gap widens to {money} in {month}",
            "{person} signals pause in rate rises",
            "Markets in {city} slip as {thing} worries return",
        ),
    ),
    Topic(
        name="sport",
        section="Sport",
        orgs=(
            "the football association",
            "the cricket board",
            "the league",
            "the disciplinary panel",
            "the national selectors",
            "the organising committee",
        ),
        things=(
            "the league title",
            "the semi-final",
            "the T20 series",
            "the cup final",
            "the qualifying round",
            "the test match",
            "the relegation fight",
            "the transfer window",
        ),
        roles=(
            "the head coach",
            "the captain",
            "the club's sporting director",
            "the team physio",
            "the league's chief executive",
            "a former international",
            "the chief selector",
        ),
        sentences=(
            "{team} beat {team2} {score} at {ground} {when} to move {small} points clear at the top of "
            "the table.",
            "{person} scored twice in the second half, including a penalty in the {minute} minute.",
            "{team} were reduced to ten men after {person} was shown a second yellow card shortly before "
            "half-time.",
            "The result leaves {team2} {small} points adrift of the playoff places with {small2} games "
            "remaining.",
            "{person}, {role}, said the squad had been hit by injuries to three first-choice defenders.",
            "A crowd of {big} watched the match, the largest attendance at {ground} this season.",
            "Chasing {runs}, {team} were bowled out for {runs2} in the {over} over.",
            "{person} made an unbeaten {runs2} off {num} balls to anchor the innings.",
            "The club confirmed that {person} had signed a contract extension running until {year2}.",
            "{team} have now won {small} of their last {small2} matches in all competitions.",
            "{Org} will hear the appeal against the suspension of {person} {when}.",
            "Tickets for {thing} at {ground} sold out within {small} hours of going on sale.",
        ),
        quotes=(
            "We showed real character after going behind",
            "The referee had a difficult afternoon, but we should not hide behind that",
            "Nobody in this dressing room is thinking about the title yet",
            "It is the best I have felt at the crease all season",
            "We have to be honest with ourselves about the defending",
            "The supporters carried us through the last twenty minutes",
        ),
        headlines=(
            "{team} beat {team2} {score} to go top",
            "{person} double sinks {team2}",
            "{team} face {team2} in {thing} after late comeback",
            "{person} signs new deal with {team}",
            "Injury blow for {team} ahead of {thing}",
            "{team2} coach under pressure after {ordinal} straight defeat",
        ),
        extras={
            "team": (
                "Riverside United",
                "Northgate Rovers",
                "Eastern Strikers",
                "Capital Lions",
                "Harbour City FC",
                "Kingsway Royals",
                "Western Warriors",
                "Blue Hills Athletic",
                "Metro Titans",
                "Southern Stars",
                "Lakeside Rangers",
                "Old Mill Wanderers",
            ),
            "ground": (
                "Eastfield Park",
                "the Riverside Arena",
                "Kingsway Stadium",
                "the Municipal Ground",
                "Northgate Oval",
                "Harbour Road",
            ),
        },
    ),
    Topic(
        name="defence",
        section="Defence",
        orgs=(
            "the defence ministry",
            "the navy",
            "the air force",
            "the army's northern command",
            "the defence research organisation",
            "the coast guard",
            "the defence acquisition council",
        ),
        things=(
            "the fighter jet programme",
            "the new submarine fleet",
            "the air defence network",
            "border patrols",
            "the joint military exercise",
            "drone procurement",
            "the artillery upgrade",
            "the maritime surveillance mission",
        ),
        roles=(
            "the defence minister",
            "the chief of naval staff",
            "a retired air marshal",
            "a spokesperson for the army",
            "the defence secretary",
            "a senior military official",
        ),
        sentences=(
            "{Org} cleared the purchase of {num} {hardware} worth {money} at a meeting chaired by {person}.",
            "The exercise, involving about {big} troops and {num} aircraft, will run for {small} days along "
            "the coast.",
            "{person}, {role}, said the first deliveries under {thing} were expected by {year2}.",
            "Officials said the {hardware} would replace ageing models that have been in service since the "
            "{decade}s.",
            "Satellite images reviewed by analysts show new construction near {place}.",
            "The two navies will hold anti-submarine drills in the {sea} next month, the statement said.",
            "{Org} said no casualties were reported after the incident near {place} {when}.",
            "Parliament's standing committee on defence has questioned delays in {thing}.",
            "The contract requires {pct} of the components to be manufactured locally.",
            "A spokesperson for {org} said the deployment was routine and not aimed at any country.",
            "{person} will travel to {city} {when} for talks on {thing} with counterparts from {country}.",
            "The {hardware} were tested at a range near {place} in {month}, officials said.",
        ),
        quotes=(
            "Our forces are ready for any contingency",
            "This is about self-reliance as much as it is about security",
            "We are watching developments across the border very closely",
            "The exercise sends a message of partnership, not provocation",
            "Every rupee we spend has to turn into capability on the ground",
            "There will be no compromise on the safety of our personnel",
        ),
        headlines=(
            "{Org} clears {money} deal for {hardware}",
            "Navies of {country} and {country2} to hold drills in {sea}",
            "{person} flags delays in {thing}",
            "Troops on alert after incident near {place}",
            "{country} tests new {hardware} in {month}",
            "Panel questions cost of {thing}",
        ),
        extras={
            "hardware": (
                "light combat helicopters",
                "armoured personnel carriers",
                "surveillance drones",
                "patrol vessels",
                "transport aircraft",
                "towed howitzers",
                "radar units",
                "trainer jets",
            ),
            "sea": ("Arabian Sea", "Bay of Bengal", "South China Sea", "Baltic Sea", "eastern Mediterranean"),
        },
    ),
    Topic(
        name="technology",
        section="Technology",
        orgs=(
            "the telecom regulator",
            "the data protection authority",
            "the IT ministry",
            "the competition commission",
            "the cyber security agency",
        ),
        things=(
            "the draft data protection rules",
            "5G spectrum",
            "chip manufacturing",
            "app store rules",
            "cloud storage",
            "the digital payments network",
            "satellite broadband licences",
            "generative AI tools",
        ),
        roles=(
            "chief executive of {firm}",
            "the IT minister",
            "a security researcher",
            "chief technology officer at {firm}",
            "a partner at a technology law firm",
            "an analyst who follows the sector",
        ),
        sentences=(
            "{firm} said it would invest {money} in a chip packaging plant near {city}, creating about "
            "{big} jobs.",
            "{Org} has asked {firm} to explain how user data was shared with advertisers.",
            "The outage affected nearly {big} users for about {small} hours {when}, according to a "
            "monitoring site.",
            "{person}, {role}, said the company had patched the flaw within a day of it being reported.",
            "Sales of {device} grew {pct} in the {quarter} quarter, led by demand in smaller cities.",
            "The auction of {thing} raised {money}, below the government's reserve estimate.",
            "{firm} shares fell {pct} after {org} opened an inquiry into its pricing.",
            "Under the proposed rules, companies would have {small} days to report a data breach to {org}.",
            "Developers have criticised {thing}, saying they favour large incumbents.",
            "The startup, founded in {year}, has raised {money} from investors including {firm}.",
            "{person} told a conference in {city} that {thing} would need {small} more years to mature.",
            "About {pct} of the {device} sold in {month} came from local assembly lines, the industry body "
            "said.",
        ),
        quotes=(
            "Security is not a feature you bolt on at the end",
            "We expect the rules to bring clarity, not more paperwork",
            "Our customers will not pay a single rupee more because of this",
            "The technology is moving faster than the regulation",
            "We take every report from researchers seriously",
            "Competition is good for consumers and we welcome it",
        ),
        headlines=(
            "{firm} to invest {money} in plant near {city}",
            "{Org} questions {firm} over user data",
            "Outage hits {big} users of {firm} services",
            "Auction of {thing} raises {money}",
            "Sales of {device} rise {pct} in {quarter} quarter",
            "{person} warns on pace of {thing}",
        ),
        extras={
            "device": (
                "smartphones",
                "smart speakers",
                "electric scooters",
                "wearable devices",
                "laptops",
                "tablets",
            ),
            "quarter": ("first", "second", "third", "fourth"),
        },
    ),
    Topic(
        name="climate",
        section="Environment",
        orgs=(
            "the weather office",
            "the pollution control board",
            "the environment ministry",
            "the disaster management authority",
            "the state power utility",
        ),
        things=(
            "the heatwave",
            "monsoon rainfall",
            "the air quality index",
            "solar capacity",
            "groundwater levels",
            "the flood warning system",
            "coal imports",
        ),
        roles=(
            "the environment minister",
            "a senior meteorologist",
            "a district collector",
            "an energy analyst",
            "the relief commissioner",
            "a hydrologist at a state university",
        ),
        sentences=(
            "{Org} issued an orange alert for {small} districts as temperatures crossed {temp} degrees "
            "Celsius.",
            "Rainfall so far this season is {pct} below the long-period average, {org} said.",
            "The air quality index in {city} reached {aqi} {when}, a level classified as severe.",
            "The state added {num} megawatts of solar capacity last year, {person}, {role}, told the "
            "assembly.",
            "About {big} people were moved to relief camps after the river breached its banks near {place}.",
            "{Org} said the new rules would require thermal plants to cut emissions by {pct} by {year2}.",
            "Farmers in the region said the delayed rains had forced them to postpone sowing by {small} "
            "weeks.",
            "Power demand hit a record {big} megawatts {when}, straining the grid.",
            "Schools in {city} will stay shut until {day} because of the heat, officials said.",
            "{person} said the data on {thing} showed a clear trend over the past {small} decades.",
        ),
        quotes=(
            "We cannot keep treating every extreme summer as an exception",
            "The relief teams are working around the clock",
            "Renewables are now the cheapest power we can buy",
            "The data show a clear trend and we have to plan for it",
            "People should stay indoors during the afternoon hours",
        ),
        headlines=(
            "Orange alert in {city} as mercury crosses {temp} degrees",
            "{Org} flags {pct} shortfall in rain",
            "Thousands moved to camps as river floods near {place}",
            "{city} air turns severe, AQI touches {aqi}",
            "{Thing} hits record, says {org}",
        ),
    ),
    Topic(
        name="health",
        section="Health",
        orgs=(
            "the health ministry",
            "the state health department",
            "the drug regulator",
            "the medical council",
            "the public health institute",
        ),
        things=(
            "the vaccination drive",
            "dengue cases",
            "the new hospital wing",
            "drug prices",
            "the health insurance scheme",
            "antibiotic resistance",
        ),
        roles=(
            "the health minister",
            "the director of health services",
            "a senior epidemiologist",
            "the medical superintendent",
            "a paediatrician in {city}",
        ),
        sentences=(
            "{Org} reported {num} new cases of dengue in the past week, bringing the total this year to "
            "{big}.",
            "The vaccination drive aims to reach {big} children in {small} districts before the end of "
            "{month}.",
            "{person}, {role}, said hospitals had been told to keep {num} beds ready for fever patients.",
            "The drug regulator ordered the recall of {num} batches of cough syrup after samples failed "
            "quality tests.",
            "Out-of-pocket spending on health fell to {pct} of the total, the survey found.",
            "The new wing at the district hospital in {city} will add {num} intensive care beds.",
            "{Org} said {pct} of the samples tested in {month} showed resistance to common antibiotics.",
            "Doctors in {city} said outpatient numbers had risen by {pct} over the past {small} weeks.",
        ),
        quotes=(
            "There is no need to panic, but there is every need to be careful",
            "Early testing saves lives",
            "We are seeing more patients in the clinics than at this time last year",
            "Every eligible child should get the dose, no exceptions",
        ),
        headlines=(
            "Dengue cases climb to {big} as {org} steps up checks",
            "{Org} orders recall of {num} cough syrup batches",
            "{city} hospital adds {num} ICU beds",
            "{person} launches drive to vaccinate {big} children",
        ),
    ),
)

GENERIC_SENTENCES = (
    "The development comes {small} weeks after {thing} was first raised in {city}.",
    "{person} is scheduled to meet officials from {org} later this week.",
    "Details of the plan are expected to be made public by the end of {month}.",
    "Officials did not give a timeline for a decision.",
    "The statement did not say how the figures had been calculated.",
    "Critics say {thing} has been debated for years with little progress.",
    "Reporters were not allowed inside the building while the meeting was under way.",
    "The issue is likely to come up again at the next meeting of {org} in {month}.",
)
QUOTE_SENTENCES = (
    "“{quote},” {person}, {role}, said.",
    "“{quote},” {person} told reporters in {city}.",
    "{person} said: “{quote}.”",
    "“{quote},” said {person}, adding that a fuller statement would follow.",
    "Speaking in {city}, {person} said: “{quote}.”",
)
UPDATE_SENTENCES = (
    "Update: {org} issued a further statement {when} confirming the figures.",
    "This story has been updated with comment from {person}, {role}.",
    "Update: {person} later told reporters in {city} that talks would continue.",
    "Updated at {clock} with the latest figures from {org}.",
)
WIRE_CREDITS = (
    "(With inputs from PTI)",
    "(With inputs from agencies)",
    "(With inputs from Reuters)",
    "(This story has not been edited by {site} staff and is auto-generated from a syndicated feed.)",
    "This story has not been edited by {site} staff and is published from a syndicated news agency feed.",
    "(Reporting by {person}; Editing by {person2})",
)
COMMENTS = (
    "Good reporting, but where is the follow-up on last year's promises?",
    "I live in {city} and nothing has changed on the ground.",
    "The numbers quoted here do not match what {org} said last month.",
    "Finally someone asks the right questions.",
    "Same story every year. Nobody is held accountable.",
    "Thanks for the clear explanation of {thing}.",
    "Would like to see the full statement rather than a summary.",
    "This is exactly why people have stopped trusting official figures.",
)

_SLOT = re.compile(r"\{(\w+)\}")

# --- stories ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Story:
    """A story before any site prints it."""

    topic: str
    section: str
    headline: str
    paragraphs: tuple[str, ...]
    summary: str
    author: str
    city: str


class _Writer:
    """Fills sentence templates for one story: a small cast of named people, one city, one topic."""

    def __init__(self, rng: random.Random, topic: Topic) -> None:
        self.rng = rng
        self.topic = topic
        self.city, self.country = rng.choice(CITIES)
        self.cast = [self.person() for _ in range(rng.randint(2, 4))]
        self.org = rng.choice(topic.orgs)
        self.thing = rng.choice(topic.things)
        self.used: set[str] = set()

    def person(self) -> str:
        return f"{self.rng.choice(FIRST_NAMES)} {self.rng.choice(LAST_NAMES)}"

    def _value(self, slot: str) -> str:
        rng, topic = self.rng, self.topic
        key = slot.lower()
        values: dict[str, Callable[[], str]] = {
            "person": lambda: rng.choice(self.cast),
            "person2": self.person,
            "role": lambda: self.fill(rng.choice(topic.roles)),
            "org": lambda: self.org if rng.random() < 0.6 else rng.choice(topic.orgs),
            "thing": lambda: self.thing if rng.random() < 0.7 else rng.choice(topic.things),
            "city": lambda: self.city if rng.random() < 0.7 else rng.choice(CITIES)[0],
            "country": lambda: self.country,
            "country2": lambda: rng.choice(CITIES)[1],
            "firm": lambda: rng.choice(FIRMS),
            "place": lambda: rng.choice(PLACES),
            "when": lambda: rng.choice(WHEN),
            "day": lambda: rng.choice(WEEKDAYS),
            "month": lambda: rng.choice(MONTHS),
            "ordinal": lambda: rng.choice(ORDINALS),
            "num": lambda: str(rng.randint(12, 480)),
            "small": lambda: str(rng.randint(2, 9)),
            "small2": lambda: str(rng.randint(10, 19)),
            "big": lambda: f"{rng.randint(1, 95)},{rng.randint(0, 999):03d}",
            "pct": lambda: f"{rng.randint(0, 14)}.{rng.randint(1, 9)}{rng.choice((' per cent', '%'))}",
            "pct2": lambda: f"{rng.randint(0, 14)}.{rng.randint(1, 9)} per cent",
            "money": self._money,
            "year": lambda: str(rng.randint(1998, 2022)),
            "year2": lambda: str(rng.randint(2025, 2031)),
            "decade": lambda: str(rng.choice((1970, 1980, 1990))),
            "score": lambda: f"{rng.randint(2, 5)}-{rng.randint(0, 1)}",
            "minute": lambda: _ordinal(rng.randint(11, 89)),
            "over": lambda: _ordinal(rng.randint(21, 49)),
            "runs": lambda: str(rng.randint(140, 330)),
            "runs2": lambda: str(rng.randint(52, 139)),
            "temp": lambda: str(rng.randint(41, 47)),
            "aqi": lambda: str(rng.randint(301, 480)),
            "clock": lambda: f"{rng.randint(1, 12)}:{rng.randint(0, 59):02d} {rng.choice(('am', 'pm'))}",
            "quote": lambda: rng.choice(topic.quotes),
        }
        if key in values:
            value = values[key]()
        elif key in topic.extras:
            pool = topic.extras[key]
            value = rng.choice(pool)
        elif key.rstrip("2") in topic.extras:
            value = rng.choice(topic.extras[key.rstrip("2")])
        else:
            raise KeyError(f"unknown slot {{{slot}}} in topic {topic.name}")
        return value[0].upper() + value[1:] if slot[0].isupper() else value

    def _money(self) -> str:
        amount = f"{self.rng.randint(1, 99)}.{self.rng.randint(1, 9)}"
        unit = self.rng.choice(("$", "€", "£", "Rs "))
        scale = self.rng.choice(("million", "billion", "crore") if unit == "Rs " else ("million", "billion"))
        return f"{unit}{amount} {scale}"

    def fill(self, template: str) -> str:
        return _SLOT.sub(lambda match: self._value(match.group(1)), template)

    def _template(self, pool: tuple[str, ...]) -> str:
        """A template this story has not used yet, while there are any: real reports do not repeat."""
        fresh = [template for template in pool if template not in self.used]
        template = self.rng.choice(fresh or pool)
        self.used.add(template)
        return template

    def sentence(self) -> str:
        roll = self.rng.random()
        if roll < 0.2:
            template = self._template(QUOTE_SENTENCES)
        elif roll < 0.3:
            template = self._template(GENERIC_SENTENCES)
        else:
            template = self._template(self.topic.sentences)
        text = self.fill(template)
        return text[0].upper() + text[1:]

    def paragraph(self) -> str:
        return " ".join(self.sentence() for _ in range(self.rng.choices((1, 2, 3, 4), (2, 4, 3, 1))[0]))

    def headline(self) -> str:
        text = self.fill(self.rng.choice(self.topic.headlines))
        return text[0].upper() + text[1:]


def _ordinal(number: int) -> str:
    suffix = "th" if 10 <= number % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(number % 10, "th")
    return f"{number}{suffix}"


def _story(rng: random.Random) -> Story:
    topic = rng.choice(TOPICS)
    writer = _Writer(rng, topic)
    paragraphs = tuple(writer.paragraph() for _ in range(rng.randint(4, 12)))
    summary = writer.sentence()
    return Story(
        topic=topic.name,
        section=topic.section,
        headline=writer.headline(),
        paragraphs=paragraphs,
        summary=summary,
        author=writer.person(),
        city=writer.city,
    )


# --- sites ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Site:
    """One simulated publication, served under ``/<slug>/``."""

    slug: str
    name: str
    layout: str
    utc_offset_minutes: int
    title_format: str
    feed_format: str  # "rss" or "atom"
    news_sitemap: bool
    sections: tuple[str, ...]

    @property
    def tz(self) -> timezone:
        return timezone(timedelta(minutes=self.utc_offset_minutes))

    @property
    def home_path(self) -> str:
        return f"/{self.slug}/"

    @property
    def feed_path(self) -> str:
        return f"/{self.slug}/feed.xml"

    @property
    def sitemap_path(self) -> str:
        return f"/{self.slug}/sitemap.xml"


_SECTIONS = _words(
    "India World Politics Business Markets Sport Cricket Technology Defence Environment Health Opinion "
    "Lifestyle Videos Photos Podcasts"
)

SITES: tuple[Site, ...] = (
    Site("site-1", "The Morning Ledger", "wordpress", 0, "{title} – {site}", "rss", False, _SECTIONS[:10]),
    Site("site-2", "Capital Wire Daily", "article_aside", 330, "{title} | {site}", "rss", True, _SECTIONS),
    Site("site-3", "Riverside Chronicle", "divsoup", -300, "{title} - {site}", "atom", False, _SECTIONS[2:]),
    Site("site-4", "Eastern Standard Post", "rail_first", 330, "{title} | {site}", "rss", True, _SECTIONS),
    Site("site-5", "Metro Bulletin", "inline_boxes", 60, "{title} | {site}", "rss", False, _SECTIONS[:12]),
    Site("site-6", "The Northern Courier", "no_article", 0, "{site}: {title}", "rss", False, _SECTIONS[1:9]),
    Site("site-7", "Harbourline News", "magazine", 600, "{title} · {site}", "atom", True, _SECTIONS[3:14]),
)  # fmt: skip
SITES_BY_SLUG = {site.slug: site for site in SITES}
TOPICS_BY_NAME = {topic.name: topic for topic in TOPICS}

# --- pages ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Teaser:
    """Another story as a sidebar shows it."""

    headline: str
    blurb: str
    href: str
    published: datetime


@dataclass(frozen=True)
class CorpusPage:
    """One article page and the truth about it.

    ``url`` is the page's address relative to the server root (``/site-3/news/<slug>.html``); ``path``
    is the same address below the site prefix (``/news/<slug>.html``). ``body_paragraphs`` is the true
    article body; ``boilerplate_lines`` is text printed inside the article region that is not part of it
    (wire credits, captions, "Also read" boxes, in-body promos). ``syndicated_from`` is the ``url`` of
    the page this one copies.
    """

    site: str
    path: str
    url: str
    html: str
    title: str
    published: str
    body_paragraphs: tuple[str, ...]
    syndicated_from: str | None
    boilerplate_lines: tuple[str, ...]
    layout: str
    section: str
    summary: str

    @property
    def published_at(self) -> datetime:
        return datetime.fromisoformat(self.published)


@dataclass(frozen=True)
class _Render:
    """Everything a layout needs to print one page; chosen up front so rendering draws no randomness."""

    site: Site
    url: str
    title: str
    summary: str
    paragraphs: tuple[str, ...]
    author: str
    dateline: str
    section: str
    published: datetime
    trending: tuple[Teaser, ...]
    latest: tuple[Teaser, ...]
    most_read: tuple[Teaser, ...]
    also_read: tuple[tuple[int, Teaser], ...]
    captions: tuple[tuple[int, str], ...]
    lead_caption: str
    promo: str
    wire_credit: str
    comments: tuple[tuple[str, str], ...]
    pull_quote: str
    tags: tuple[str, ...]

    @property
    def iso(self) -> str:
        return self.published.isoformat()


@dataclass(frozen=True)
class Corpus:
    """The generated pages of every site, with their feeds, sitemaps and a server for them."""

    seed: int
    sites: tuple[Site, ...]
    pages: tuple[CorpusPage, ...]

    @cached_property
    def by_url(self) -> dict[str, CorpusPage]:
        return {page.url: page for page in self.pages}

    def pages_of(self, site: str) -> list[CorpusPage]:
        """The site's pages, newest first."""
        own = [page for page in self.pages if page.site == site]
        return sorted(own, key=lambda page: (page.published_at, page.url), reverse=True)

    def feed_xml(self, site: str, base_url: str, limit: int = FEED_ITEMS) -> str:
        """The site's RSS 2.0 or Atom feed with its newest ``limit`` articles; links are absolute."""
        return _feed_xml(SITES_BY_SLUG[site], self.pages_of(site)[:limit], base_url)

    def sitemap_xml(self, site: str, base_url: str) -> str:
        """Every article of the site; Google News tags on the sites that use them."""
        return _sitemap_xml(SITES_BY_SLUG[site], self.pages_of(site), base_url)

    def home_html(self, site: str, limit: int = 40) -> str:
        """The site's front page: its newest headlines with their standfirsts."""
        return _home_html(SITES_BY_SLUG[site], self.pages_of(site)[:limit])

    def robots_txt(self, base_url: str) -> str:
        sitemaps = "".join(f"Sitemap: {base_url}{site.sitemap_path}\n" for site in self.sites)
        return f"User-agent: *\nAllow: /\nDisallow: /search\n\n{sitemaps}"


def generate_corpus(n_pages: int = 2000, seed: int = 7, syndicated_share: float = 0.2) -> Corpus:
    """``n_pages`` article pages spread over the sites; the same arguments give byte-identical pages."""
    if n_pages < 1:
        raise ValueError("n_pages must be at least 1")
    if not 0 <= syndicated_share < 1:
        raise ValueError("syndicated_share must be in [0, 1)")
    rng = random.Random(seed)
    copies = round(n_pages * syndicated_share)
    originals = n_pages - copies
    if originals < 1:
        raise ValueError("at least one page must be an original story")
    step = SPAN / n_pages
    stories = [_story(rng) for _ in range(originals)]
    # Originals are spread evenly over the span; each copy follows its original by minutes to hours,
    # under a headline of its own.
    plan: list[_Slot] = []
    for index, story in enumerate(stories):
        offset = step * index * n_pages / originals + timedelta(seconds=rng.randint(0, 3000))
        when = FIRST_PUBLISHED + timedelta(seconds=int(offset.total_seconds()))
        plan.append(_Slot(story, rng.choice(SITES), when, None, story.headline))
    for _ in range(copies):
        source = rng.randrange(originals)
        original = plan[source]
        site = rng.choice([site for site in SITES if site is not original.site])
        when = original.when + timedelta(minutes=rng.randint(4, 600))
        title = _Writer(rng, TOPICS_BY_NAME[original.story.topic]).headline()
        plan.append(_Slot(original.story, site, when, source, title))
    urls = [f"/{slot.site.slug}/news/{_slug(rng, slot.title, index)}.html" for index, slot in enumerate(plan)]
    # Sidebars tease other stories of the same site.
    teasers: dict[str, list[Teaser]] = {site.slug: [] for site in SITES}
    for url, slot in zip(urls, plan, strict=True):
        teasers[slot.site.slug].append(Teaser(slot.title, _blurb(slot.story.paragraphs[0]), url, slot.when))
    pages = [_page(rng, slot, urls, index, teasers[slot.site.slug]) for index, slot in enumerate(plan)]
    pages.sort(key=lambda page: (page.published_at, page.url))
    return Corpus(seed=seed, sites=SITES, pages=tuple(pages))


@dataclass(frozen=True)
class _Slot:
    """Which story a page prints, where, when, under which headline, and which page it copies."""

    story: Story
    site: Site
    when: datetime
    source: int | None
    title: str


def _slug(rng: random.Random, headline: str, index: int) -> str:
    words = re.findall(r"[a-z0-9]+", headline.lower())[:8]
    return f"{'-'.join(words)}-{index:05d}{rng.randint(100, 999)}"


def _blurb(paragraph: str, limit: int = 150) -> str:
    if len(paragraph) <= limit:
        return paragraph
    return paragraph[:limit].rsplit(" ", 1)[0] + "..."


def _page(rng: random.Random, slot: _Slot, urls: list[str], index: int, teasers: list[Teaser]) -> CorpusPage:
    story, site, source, title = slot.story, slot.site, slot.source, slot.title
    when = slot.when.astimezone(site.tz)
    writer = _Writer(rng, TOPICS_BY_NAME[story.topic])
    paragraphs = list(story.paragraphs)
    summary = story.summary
    wire_credit = ""
    if source is not None:
        summary = story.paragraphs[0] if rng.random() < 0.5 else writer.sentence()
        if len(paragraphs) > 4 and rng.random() < 0.3:
            del paragraphs[rng.randrange(1, len(paragraphs))]
        if len(paragraphs) < 12 and rng.random() < 0.25:
            paragraphs.append(writer.fill(rng.choice(UPDATE_SENTENCES)))
        if rng.random() < 0.7:
            wire_credit = writer.fill(rng.choice(WIRE_CREDITS).replace("{site}", site.name))

    def pick(count: int) -> tuple[Teaser, ...]:
        chosen = rng.sample(range(len(teasers)), min(count + 1, len(teasers)))
        return tuple(teasers[i] for i in chosen if teasers[i].href != urls[index])[:count]

    layout = site.layout
    also_read: tuple[tuple[int, Teaser], ...] = ()
    captions: tuple[tuple[int, str], ...] = ()
    if layout == "inline_boxes":
        spots = sorted(rng.sample(range(1, len(paragraphs)), min(2, len(paragraphs) - 1)))
        also_read = tuple((spot, teaser) for spot, teaser in zip(spots, pick(2), strict=False))
        captions = ((rng.randrange(1, len(paragraphs)), _caption(writer)),)
    elif layout in ("article_aside", "magazine") and rng.random() < 0.5:
        captions = ((rng.randrange(1, len(paragraphs)), _caption(writer)),)
    lead_caption = (
        _caption(writer) if layout in ("wordpress", "article_aside", "rail_first", "magazine") else ""
    )
    promo = ""
    if layout == "divsoup":
        promo = "Get the day's top stories in your inbox. Sign up for the Riverside Chronicle briefing."
    elif layout == "rail_first" and rng.random() < 0.5:
        promo = "Click here to follow our live coverage and get instant updates on WhatsApp."
    comments: tuple[tuple[str, str], ...] = ()
    if layout == "wordpress":
        comments = tuple(
            (writer.person(), writer.fill(rng.choice(COMMENTS))) for _ in range(rng.randint(2, 6))
        )
    pull_quote = ""
    if layout == "magazine":
        sentences = [s for p in paragraphs for s in re.split(r"(?<=[.”])\s+", p) if len(s) > 60]
        pull_quote = rng.choice(sentences) if sentences else ""
    dateline = f"{story.city.upper()}, {when.strftime('%B')} {when.day}"
    render = _Render(
        site=site,
        url=urls[index],
        title=title,
        summary=summary,
        paragraphs=tuple(paragraphs),
        author=story.author if source is None or rng.random() < 0.3 else f"{site.name} Desk",
        dateline=dateline,
        section=story.section,
        published=when,
        trending=pick(rng.randint(4, 7)),
        latest=pick(rng.randint(4, 8)),
        most_read=pick(5),
        also_read=also_read,
        captions=captions,
        lead_caption=lead_caption,
        promo=promo,
        wire_credit=wire_credit,
        comments=comments,
        pull_quote=pull_quote,
        tags=tuple(rng.sample(("Budget", "Elections", story.section, story.city, "Top stories", "Explainer",
                                "Markets", "Live"), 3)),
    )  # fmt: skip
    boilerplate = [
        *([f"{dateline}:" if layout == "wordpress" else dateline] if layout in DATELINE_IN_BODY else []),
        *([lead_caption] if lead_caption else []),
        *(f"Also read: {teaser.headline}" for _, teaser in also_read),
        *(text for _, text in captions),
        *([promo] if promo else []),
        *([wire_credit] if wire_credit else []),
    ]
    return CorpusPage(
        site=site.slug,
        path=render.url.removeprefix(f"/{site.slug}"),
        url=render.url,
        html=_LAYOUTS[layout](render),
        title=title,
        published=render.iso,
        body_paragraphs=render.paragraphs,
        syndicated_from=urls[source] if source is not None else None,
        boilerplate_lines=tuple(boilerplate),
        layout=layout,
        section=story.section,
        summary=summary,
    )


DATELINE_IN_BODY = frozenset({"wordpress", "inline_boxes"})


def _caption(writer: _Writer) -> str:
    credit = writer.rng.choice(("File photo", "Photo: Reuters", "Photo: Special arrangement", "AP Photo"))
    return f"{writer.fill(writer.rng.choice(CAPTIONS))} ({credit})"


CAPTIONS = (
    "{person} speaks to reporters in {city}.",
    "A view of the venue in {city} ahead of the meeting.",
    "Supporters gather outside the offices of {org}.",
    "{person} at an event in {city} earlier this year.",
    "Workers at a site on the outskirts of {city}.",
)

# --- markup shared by the layouts -------------------------------------------------------------------


def _t(text: str) -> str:
    return escape(text, quote=False)


def _a(text: str) -> str:
    return escape(text, quote=True)


_NAME = re.compile(r"\b[A-Z][a-z]+(?: [A-Z][a-z]+)+\b")
_QUOTED = re.compile(r"“[^”]+”")


def _inline(text: str) -> str:
    """A body paragraph's markup: some names are links and some quotes italic, as editors do.

    Which ones depends on the text only, so rendering stays free of randomness; the text is unchanged.
    """
    mark = zlib.crc32(text.encode())
    html = _t(text)
    if mark % 10 < 3 and (name := _NAME.search(html)):
        slug = name.group().lower().replace(" ", "-")
        html = f'{html[: name.start()]}<a href="/topic/{slug}">{name.group()}</a>{html[name.end() :]}'
    if mark % 7 == 0 and (quote := _QUOTED.search(html)):
        html = f"{html[: quote.start()]}<em>{quote.group()}</em>{html[quote.end() :]}"
    return html


def _paragraphs(texts: Sequence[str]) -> str:
    return "".join(f"<p>{_inline(text)}</p>\n" for text in texts)


def _nav(site: Site, list_class: str = "menu") -> str:
    items = "".join(
        f'<li><a href="{site.home_path}{name.lower()}/">{name}</a></li>' for name in site.sections
    )
    return f'<ul class="{list_class}">{items}</ul>'


def _cookie_banner(site: Site) -> str:
    return (
        '<div id="cookie-consent" class="cookie-banner" role="dialog"><p>We use cookies to personalise '
        "content and ads, to provide social media features and to analyse our traffic. By continuing to "
        f"browse {_t(site.name)} you agree to our use of cookies.</p>"
        '<button class="accept">Accept all</button><button class="manage">Manage preferences</button></div>\n'
    )


def _newsletter(site: Site, tag: str = "div") -> str:
    return (
        f'<{tag} class="newsletter-signup"><h3>Newsletter</h3><p>Get the morning briefing from '
        f"{_t(site.name)} in your inbox every weekday. Sign up for free.</p>"
        f'<form action="{site.home_path}newsletter"><input type="email" name="email" placeholder="Email">'
        f'<button type="submit">Subscribe</button></form></{tag}>\n'
    )


def _footer(site: Site, tag: str = "footer", css: str = "site-footer") -> str:
    links = " | ".join(
        f'<a href="{site.home_path}{slug}">{label}</a>'
        for slug, label in (
            ("about", "About us"),
            ("contact", "Contact"),
            ("privacy", "Privacy policy"),
            ("terms", "Terms of use"),
            ("advertise", "Advertise with us"),
            ("careers", "Careers"),
        )
    )
    columns = "".join(
        f'<div class="footer-col"><h5>{section}</h5><ul>'
        + "".join(
            f'<li><a href="{site.home_path}{section.lower()}/{sub.lower()}/">{sub}</a></li>'
            for sub in _SUBSECTIONS
        )
        + "</ul></div>"
        for section in site.sections
    )
    return (
        f'<{tag} class="{css}"><div class="footer-sections">{columns}</div>'
        f"<p>{links}</p><p>{_t(site.name)} is a member of the Independent Press Standards Board. "
        "All material on this site is protected by copyright and may not be reproduced without "
        f'permission.</p><p class="copyright">© 2024 {_t(site.name)}. All rights reserved.</p></{tag}>\n'
    )


_SUBSECTIONS = ("Latest", "Analysis", "Explainers", "Videos", "Photos")
_STYLE = (
    "<style>"
    + "".join(
        f".{name}{{margin:0 auto;padding:{index % 5}px {index % 7}px;"
        f"font:{12 + index % 6}px/1.4 Georgia,serif;"
        f"color:#{index * 37 % 256:02x}{index * 91 % 256:02x}{index * 53 % 256:02x}}}"
        for index, name in enumerate(
            _words(
                "hdr nav menu teaser rail story body lead caption figure ftr footer col box widget share "
                "tags promo banner cookie newsletter aside trending latest most-read byline dateline kicker"
            )
        )
    )
    + "</style>\n"
)


def _scripts() -> str:
    return (
        "<script>window.dataLayer=window.dataLayer||[];function gtag(){dataLayer.push(arguments);}"
        "gtag('js',new Date());gtag('config','G-BENCH0001');</script>\n"
        '<script async src="/static/ads.js"></script>\n'
    )


def _teaser_list(teasers: Sequence[Teaser], headline_tag: str = "h4", blurbs: bool = True) -> str:
    return "".join(
        f'<div class="teaser"><{headline_tag}><a href="{_a(t.href)}">{_t(t.headline)}</a></{headline_tag}>'
        + (f"<p>{_t(t.blurb)}</p>" if blurbs else "")
        + "</div>\n"
        for t in teasers
    )


def _link_list(teasers: Sequence[Teaser], tag: str = "ul") -> str:
    items = "".join(f'<li><a href="{_a(t.href)}">{_t(t.headline)}</a></li>' for t in teasers)
    return f"<{tag}>{items}</{tag}>"


def _share_bar(page: _Render) -> str:
    return (
        '<div class="share-bar"><span>Share:</span>'
        f'<a href="https://www.facebook.com/sharer?u={_a(page.url)}">Facebook</a>'
        f'<a href="https://twitter.com/intent/tweet?url={_a(page.url)}">X</a>'
        f'<a href="whatsapp://send?text={_a(page.url)}">WhatsApp</a>'
        f'<a href="mailto:?subject={_a(page.title)}">Email</a></div>\n'
    )


def _tags(page: _Render) -> str:
    links = ", ".join(f'<a href="/{page.site.slug}/tag/{_a(tag.lower())}">{_t(tag)}</a>' for tag in page.tags)
    return f'<div class="tags">Tags: {links}</div>\n'


def _figure(caption: str, css: str = "wp-caption") -> str:
    return (
        f'<figure class="{css}"><img src="/static/img/photo.jpg" alt="" width="800" height="450">'
        f"<figcaption>{_t(caption)}</figcaption></figure>\n"
    )


def _head(page: _Render, *, og: bool, published_meta: bool, json_ld: bool, extra: str = "") -> str:
    title = page.site.title_format.format(title=page.title, site=page.site.name)
    metas = [f'<meta name="description" content="{_a(page.summary)}">']
    if og:
        metas += [
            '<meta property="og:type" content="article">',
            f'<meta property="og:title" content="{_a(page.title)}">',
            f'<meta property="og:site_name" content="{_a(page.site.name)}">',
            f'<meta property="og:description" content="{_a(page.summary)}">',
        ]
    if published_meta:
        metas.append(f'<meta property="article:published_time" content="{page.iso}">')
    if json_ld:
        data = {
            "@context": "https://schema.org",
            "@type": "NewsArticle",
            "headline": page.title,
            "datePublished": page.iso,
            "author": {"@type": "Person", "name": page.author},
            "publisher": {"@type": "Organization", "name": page.site.name},
            "articleSection": page.section,
        }
        payload = json.dumps(data, ensure_ascii=False).replace("<", "\\u003c")
        metas.append(f'<script type="application/ld+json">{payload}</script>')
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{_t(title)}</title>\n" + "\n".join(metas) + "\n"
        f'<link rel="canonical" href="{_a(page.url)}">\n'
        f'<link rel="alternate" type="application/rss+xml" title="{_a(page.site.name)}" '
        f'href="{page.site.feed_path}">\n'
        f'<link rel="stylesheet" href="/{page.site.slug}/static/main.css">\n{_STYLE}{extra}</head>\n'
    )


def _body_with_inserts(page: _Render, figure_css: str, also_css: str) -> str:
    """Body paragraphs with the page's in-body captions and "Also read" boxes before the given ones."""
    inserts: dict[int, list[str]] = {}
    for spot, caption in page.captions:
        inserts.setdefault(spot, []).append(_figure(caption, figure_css))
    for spot, teaser in page.also_read:
        inserts.setdefault(spot, []).append(
            f'<div class="{also_css}"><strong>Also read:</strong> '
            f'<a href="{_a(teaser.href)}">{_t(teaser.headline)}</a></div>\n'
        )
    out: list[str] = []
    for index, text in enumerate(page.paragraphs):
        out.extend(inserts.get(index, ()))
        out.append(f"<p>{_inline(text)}</p>\n")
    return "".join(out)


def _clock(when: datetime, fmt: str) -> str:
    return when.strftime(fmt).replace(" 0", " ")


# --- the layouts ------------------------------------------------------------------------------------


def _wordpress(page: _Render) -> str:
    """A WordPress news theme: entry-content, widget column after the post, comments below it."""
    site = page.site
    stamp = _clock(page.published, "%B %d, %Y at %I:%M %p")
    comments = "".join(
        f'<li class="comment"><article class="comment-body"><footer class="comment-meta">'
        f'<b class="fn">{_t(name)}</b> <span class="says">says:</span>'
        f'<time datetime="{page.iso}">{stamp}</time></footer>'
        f'<div class="comment-content"><p>{_t(text)}</p></div></article></li>\n'
        for name, text in page.comments
    )
    widgets = (
        f'<section class="widget widget_trending"><h2 class="widget-title">Trending</h2>'
        f"{_link_list(page.trending)}</section>\n"
        f'<section class="widget widget_recent_entries"><h2 class="widget-title">Latest News</h2>'
        f"{_teaser_list(page.latest, 'h3')}</section>\n"
    )
    body = f"""<body class="post-template-default single single-post">
{_cookie_banner(site)}<div id="page" class="site">
<header id="masthead" class="site-header"><p class="site-title"><a href="{site.home_path}">{_t(site.name)}</a></p>
<nav id="site-navigation" class="main-navigation">{_nav(site)}</nav></header>
<div id="content" class="site-content"><div id="primary" class="content-area"><main id="main" class="site-main">
<article id="post-{zlib.crc32(page.url.encode()) % 90000 + 10000}" class="post type-post status-publish hentry">
<header class="entry-header"><span class="cat-links"><a href="{site.home_path}">{_t(page.section)}</a></span>
<h1 class="entry-title">{_t(page.title)}</h1>
<div class="entry-meta"><span class="byline">by <span class="author vcard">{_t(page.author)}</span></span>
<span class="posted-on"><time class="entry-date published" datetime="{page.iso}">{stamp}</time></span></div>
</header>
{_figure(page.lead_caption, "post-thumbnail")}<div class="entry-content">
<p><strong>{_t(page.dateline)}:</strong></p>
{_paragraphs(page.paragraphs)}{f"<p><em>{_t(page.wire_credit)}</em></p>" if page.wire_credit else ""}
</div>
<footer class="entry-footer">{_tags(page)}{_share_bar(page)}</footer>
</article>
<div id="comments" class="comments-area"><h2 class="comments-title">{len(page.comments)} thoughts on “{_t(page.title)}”</h2>
<ol class="comment-list">
{comments}</ol>
<div id="respond" class="comment-respond"><h3>Leave a Reply</h3><p>Your email address will not be published.</p></div>
</div>
</main></div>
<aside id="secondary" class="widget-area">
{widgets}{_newsletter(site, "section")}</aside>
</div>
{_footer(site)}</div>
{_scripts()}</body>"""  # noqa: E501
    return _head(page, og=True, published_meta=True, json_ld=False) + body + "\n</html>\n"


def _article_aside(page: _Render) -> str:
    """<article> with <aside> boxes inside it and a sidebar beside it; dates in JSON-LD and <time>."""
    site = page.site
    stamp = _clock(page.published, "%d %b %Y, %I:%M %p IST")
    paragraphs = list(page.paragraphs)
    split = min(3, len(paragraphs) - 1)
    inside = f'<aside class="inline-trending"><h3>Trending Now</h3>{_link_list(page.trending[:4])}</aside>\n'
    captions = dict(page.captions)
    body_html = "".join(
        (inside if index == split else "")
        + (_figure(captions[index], "inline-image") if index in captions else "")
        + f"<p>{_inline(text)}</p>\n"
        for index, text in enumerate(paragraphs)
    )
    credit = f'<p class="wire-credit">{_t(page.wire_credit)}</p>\n' if page.wire_credit else ""
    breaking = "".join(
        f'<div class="breaking"><span>Breaking</span> <a href="{_a(t.href)}">{_t(t.headline)}</a></div>\n'
        for t in page.latest[:1]
    )
    body = f"""<body class="article-page">
<header class="top"><div class="logo"><a href="{site.home_path}">{_t(site.name)}</a></div>
<nav class="primary-nav">{_nav(site, "nav-list")}</nav>
{breaking}</header>
<div class="wrapper">
<main class="main-column">
<article class="article">
<nav class="breadcrumb"><a href="{site.home_path}">Home</a> › <a href="{site.home_path}">{_t(page.section)}</a></nav>
<h1 class="headline">{_t(page.title)}</h1>
<h2 class="synopsis">{_t(page.summary)}</h2>
<div class="byline-row"><span class="author">{_t(page.author)}</span>
<span class="place">{_t(page.dateline)}</span> <time datetime="{page.iso}">{stamp}</time></div>
{_figure(page.lead_caption, "lead-image")}<div class="article-text">
{body_html}{credit}</div>
<aside class="related-stories"><h3>Related Stories</h3>{_teaser_list(page.most_read[:3], "h4", blurbs=False)}</aside>
{_share_bar(page)}</article>
</main>
<aside class="sidebar">
<section class="latest"><h3>Latest News</h3>{_teaser_list(page.latest, "h4")}</section>
<section class="most-read"><h3>Most Read</h3>{_link_list(page.most_read, "ol")}</section>
{_newsletter(site, "section")}</aside>
</div>
{_cookie_banner(site)}{_footer(site)}{_scripts()}</body>"""  # noqa: E501
    return _head(page, og=True, published_meta=False, json_ld=True) + body + "\n</html>\n"


def _divsoup(page: _Render) -> str:
    """No semantic tags at all: nested divs with class names; the date in a meta tag and as text."""
    site = page.site
    stamp = _clock(page.published, "%b %d, %Y | %I:%M %p")
    latest = "".join(
        f'<div class="lst-item"><div class="lst-title"><a href="{_a(t.href)}">{_t(t.headline)}</a></div>'
        f'<div class="lst-time">{_clock(t.published.astimezone(site.tz), "%b %d, %I:%M %p")}</div></div>\n'
        for t in page.latest
    )
    credit = f'<div class="txt-credit">{_t(page.wire_credit)}</div>\n' if page.wire_credit else ""
    half = len(page.paragraphs) // 2
    promo = f'<div class="inbody-promo"><div class="promo-text">{_t(page.promo)}</div></div>\n'
    paragraphs = "".join(
        (promo if index == half and page.promo else "") + f'<div class="para">{_inline(text)}</div>\n'
        for index, text in enumerate(page.paragraphs)
    )
    body = f"""<body>
<div class="hdr"><div class="hdr-logo"><a href="{site.home_path}">{_t(site.name)}</a></div>
<div class="hdr-menu">{_nav(site, "mnu")}</div><div class="hdr-login"><a href="{site.home_path}login">Sign in</a></div></div>
<div class="ad-top"><div class="ad-label">Advertisement</div></div>
<div class="pg-wrap"><div class="col-left">
<div class="story-head"><div class="story-sec">{_t(page.section)}</div>
<div class="story-title"><h1>{_t(page.title)}</h1></div>
<div class="story-byline">{_t(page.author)} <span class="sep">/</span> {_t(page.dateline)} <span class="sep">/</span> Updated: {stamp}</div></div>
<div class="story-text">
{paragraphs}{credit}</div>
{_tags(page)}<div class="story-share">{_share_bar(page)}</div>
<div class="more-from"><div class="more-title">More from {_t(page.section)}</div>{_teaser_list(page.most_read[:4], "div")}</div>
</div>
<div class="col-right">
<div class="box-latest"><div class="box-title">Latest News</div>
{latest}</div>
<div class="box-trending"><div class="box-title">Trending</div>{_teaser_list(page.trending, "div")}</div>
<div class="ad-side"><div class="ad-label">Advertisement</div></div>
{_newsletter(site)}</div></div>
{_cookie_banner(site)}<div class="ftr">{_footer(site, "div", "ftr-inner")}</div>
{_scripts()}</body>"""  # noqa: E501
    return _head(page, og=False, published_meta=True, json_ld=False) + body + "\n</html>\n"


def _rail_first(page: _Render) -> str:
    """A left rail of teasers printed before the story in the source; <time itemprop> is the only date."""
    site = page.site
    stamp = _clock(page.published, "%a, %d %b %Y %H:%M IST")
    promo = (
        f'<p class="live-promo"><a href="{site.home_path}live">{_t(page.promo)}</a></p>\n'
        if page.promo
        else ""
    )
    credit = f"<p><i>{_t(page.wire_credit)}</i></p>\n" if page.wire_credit else ""
    paragraphs = list(page.paragraphs)
    body_html = _paragraphs(paragraphs[:2]) + promo + _paragraphs(paragraphs[2:])
    body = f"""<body class="story-page">
{_cookie_banner(site)}<header class="masthead"><div class="masthead__title"><a href="{site.home_path}">{_t(site.name)}</a></div>
<nav class="topnav">{_nav(site, "topnav__list")}</nav></header>
<div class="layout">
<aside class="rail rail--left">
<div class="rail-box"><h2 class="rail-box__title">Latest News</h2>
{_teaser_list(page.latest, "h3")}</div>
<div class="rail-box"><h2 class="rail-box__title">Trending</h2>
{_teaser_list(page.trending, "h3")}</div>
</aside>
<main class="layout__main">
<article class="story" itemscope itemtype="https://schema.org/NewsArticle">
<header class="story__header"><p class="story__kicker">{_t(page.section)}</p>
<h1 class="story__headline" itemprop="headline">{_t(page.title)}</h1>
<p class="story__dek">{_t(page.summary)}</p>
<p class="story__byline">By <span itemprop="author">{_t(page.author)}</span>, {_t(page.dateline)}
<time itemprop="datePublished" datetime="{page.iso}">{stamp}</time></p></header>
{_figure(page.lead_caption, "story__figure")}<div class="story__body" itemprop="articleBody">
{body_html}{credit}</div>
</article>
<aside class="most-read"><h2>Most read</h2>{_link_list(page.most_read, "ol")}</aside>
</main>
</div>
{_newsletter(site, "aside")}{_footer(site, "footer", "colophon")}{_scripts()}</body>"""  # noqa: E501
    return _head(page, og=True, published_meta=False, json_ld=False) + body + "\n</html>\n"


def _inline_boxes(page: _Render) -> str:
    """Body interleaved with "Also read" boxes and captioned pictures; a "Most read" list after it."""
    site = page.site
    stamp = _clock(page.published, "%d/%m/%Y %H:%M CET")
    credit = f'<p class="credit">{_t(page.wire_credit)}</p>\n' if page.wire_credit else ""
    body = f"""<body>
<div id="wrap">
<header id="header"><a class="logo" href="{site.home_path}">{_t(site.name)}</a>{_nav(site, "sections")}</header>
<div id="ticker"><b>Latest:</b> {_link_list(page.latest[:3])}</div>
<div id="main">
<article class="article-full">
<h1>{_t(page.title)}</h1>
<div class="meta"><span class="by">By {_t(page.author)}</span> · <span class="date">{stamp}</span></div>
<div class="article-body">
<p class="lead"><b>{_t(page.dateline)}</b></p>
{_body_with_inserts(page, "body-image", "also-read")}{credit}</div>
{_share_bar(page)}</article>
<section class="most-read"><h2>Most read</h2>{_teaser_list(page.most_read, "h3")}</section>
<section class="trending"><h2>Trending</h2>{_teaser_list(page.trending, "h3")}</section>
</div>
{_newsletter(site)}{_footer(site)}</div>
{_cookie_banner(site)}{_scripts()}</body>"""  # noqa: E501
    return _head(page, og=True, published_meta=True, json_ld=True) + body + "\n</html>\n"


def _no_article(page: _Render) -> str:
    """An old CMS: tables-free but no <article>, no date metadata; the date appears only as text."""
    site = page.site
    stamp = f"{page.published.strftime('%A')}, {page.published.day} {page.published.strftime('%B %Y')}, " + (
        _clock(page.published, "%I:%M %p").lower().lstrip("0")
    )
    credit = f"<p>{_t(page.wire_credit)}</p>\n" if page.wire_credit else ""
    latest = "".join(
        f'<li><a href="{_a(t.href)}">{_t(t.headline)}</a> <span class="when">'
        f"{_clock(t.published.astimezone(site.tz), '%d %B %Y').lstrip('0')}</span></li>"
        for t in page.latest
    )
    body = f"""<body>
<div id="top"><div id="logo"><a href="{site.home_path}">{_t(site.name)}</a></div>
<div id="menu">{_nav(site, "menu")}</div></div>
<div id="container">
<div id="content">
<div class="section-name">{_t(page.section)}</div>
<h1 class="title">{_t(page.title)}</h1>
<div class="info">Published: {stamp} <span class="by">By {_t(page.author)}</span></div>
<div class="text">
{_paragraphs(page.paragraphs)}{credit}</div>
<div class="share">{_share_bar(page)}</div>
</div>
<div id="sidebar">
<div class="block"><h3>Latest News</h3><ul>{latest}</ul></div>
<div class="block"><h3>Most read</h3>{_teaser_list(page.most_read, "h4")}</div>
{_newsletter(site)}</div>
</div>
<div id="footer">{_footer(site, "div", "footer-inner")}</div>
{_cookie_banner(site)}{_scripts()}</body>"""
    return _head(page, og=False, published_meta=False, json_ld=False) + body + "\n</html>\n"


def _magazine(page: _Render) -> str:
    """A magazine: standfirst, pull quote, author bio box; date in itemprop meta and a day-first text."""
    site = page.site
    stamp = f"{page.published.day}.{page.published.month}.{page.published.year}"
    paragraphs = list(page.paragraphs)
    at = min(2, len(paragraphs) - 1)
    captions = dict(page.captions)
    body_html = "".join(
        (f'<blockquote class="pullquote"><p>{_t(page.pull_quote)}</p></blockquote>\n' if index == at else "")
        + (_figure(captions[index], "mag-figure") if index in captions else "")
        + f"<p>{_inline(text)}</p>\n"
        for index, text in enumerate(paragraphs)
    )
    credit = f'<p class="agency">{_t(page.wire_credit)}</p>\n' if page.wire_credit else ""
    meta = f'<meta itemprop="datePublished" content="{page.iso}">\n'
    body = f"""<body class="magazine">
{_cookie_banner(site)}<header class="mag-header"><a class="brand" href="{site.home_path}">{_t(site.name)}</a>
<nav>{_nav(site, "mag-nav")}</nav></header>
<main>
<article class="feature" itemscope itemtype="https://schema.org/NewsArticle">
{meta}<div class="feature-head"><span class="section">{_t(page.section)}</span>
<h1 itemprop="headline">{_t(page.title)}</h1>
<p class="standfirst">{_t(page.summary)}</p>
<p class="meta">{_t(page.author)} · {stamp}</p></div>
{_figure(page.lead_caption, "feature-image")}<section class="feature-body" itemprop="articleBody">
{body_html}{credit}</section>
<div class="author-bio"><p>{_t(page.author)} writes about {_t(page.section.lower())} for {_t(site.name)}.</p></div>
{_tags(page)}</article>
<section class="read-next"><h2>Read next</h2>{_teaser_list(page.latest[:3], "h3")}</section>
<section class="popular"><h2>Most read</h2>{_link_list(page.most_read, "ol")}</section>
</main>
{_newsletter(site, "section")}{_footer(site)}{_scripts()}</body>"""  # noqa: E501
    return _head(page, og=True, published_meta=False, json_ld=False) + body + "\n</html>\n"


_LAYOUTS: dict[str, Callable[[_Render], str]] = {
    "wordpress": _wordpress,
    "article_aside": _article_aside,
    "divsoup": _divsoup,
    "rail_first": _rail_first,
    "inline_boxes": _inline_boxes,
    "no_article": _no_article,
    "magazine": _magazine,
}

# --- feeds, sitemaps, front pages, server -----------------------------------------------------------


def _x(text: str) -> str:
    return escape(text, quote=False)


def _feed_xml(site: Site, pages: Sequence[CorpusPage], base_url: str) -> str:
    home = base_url + site.home_path
    if site.feed_format == "atom":
        updated = pages[0].published if pages else FIRST_PUBLISHED.isoformat()
        entries = "".join(
            "<entry>\n"
            f"<title>{_x(page.title)}</title>\n"
            f'<link rel="alternate" href="{_a(base_url + page.url)}"/>\n'
            f"<id>{_x(base_url + page.url)}</id>\n"
            f"<published>{page.published}</published>\n<updated>{page.published}</updated>\n"
            f"<summary>{_x(page.summary)}</summary>\n"
            "</entry>\n"
            for page in pages
        )
        return (
            '<?xml version="1.0" encoding="utf-8"?>\n<feed xmlns="http://www.w3.org/2005/Atom">\n'
            f"<title>{_x(site.name)}</title>\n<id>{_x(home)}</id>\n"
            f'<link rel="alternate" href="{_a(home)}"/>\n'
            f'<link rel="self" href="{_a(base_url + site.feed_path)}"/>\n'
            f"<updated>{updated}</updated>\n{entries}</feed>\n"
        )
    items = "".join(
        "<item>\n"
        f"<title>{_x(page.title)}</title>\n"
        f"<link>{_x(base_url + page.url)}</link>\n"
        f'<guid isPermaLink="true">{_x(base_url + page.url)}</guid>\n'
        f"<pubDate>{format_datetime(page.published_at)}</pubDate>\n"
        f"<category>{_x(page.section)}</category>\n"
        f"<description>{_x(page.summary)}</description>\n"
        "</item>\n"
        for page in pages
    )
    last_build = format_datetime(pages[0].published_at) if pages else ""
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0">\n<channel>\n'
        f"<title>{_x(site.name)}</title>\n<link>{_x(home)}</link>\n"
        f"<description>Latest news from {_x(site.name)}</description>\n<language>en</language>\n"
        f"<lastBuildDate>{last_build}</lastBuildDate>\n{items}</channel>\n</rss>\n"
    )


def _sitemap_xml(site: Site, pages: Sequence[CorpusPage], base_url: str) -> str:
    def entry(page: CorpusPage) -> str:
        news = (
            f"<news:news><news:publication><news:name>{_x(site.name)}</news:name>"
            "<news:language>en</news:language></news:publication>"
            f"<news:publication_date>{page.published}</news:publication_date>"
            f"<news:title>{_x(page.title)}</news:title></news:news>"
            if site.news_sitemap
            else ""
        )
        return f"<url><loc>{_x(base_url + page.url)}</loc><lastmod>{page.published}</lastmod>{news}</url>\n"

    namespace = ' xmlns:news="http://www.google.com/schemas/sitemap-news/0.9"' if site.news_sitemap else ""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"{namespace}>\n'
        f"{''.join(entry(page) for page in pages)}</urlset>\n"
    )


def _home_html(site: Site, pages: Sequence[CorpusPage]) -> str:
    items = "".join(
        f'<li><h2><a href="{_a(page.url)}">{_t(page.title)}</a></h2><p>{_t(page.summary)}</p>'
        f'<time datetime="{page.published}">{page.published_at:%d %b %Y}</time></li>\n'
        for page in pages
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{_t(site.name)}</title>"
        f'<link rel="alternate" type="application/rss+xml" href="{site.feed_path}"></head>\n'
        f"<body><header><h1>{_t(site.name)}</h1>{_nav(site)}</header>\n"
        f'<main><ul class="front">\n{items}</ul></main></body></html>\n'
    )


def corpus_app(corpus: Corpus) -> web.Application:
    """Serve the corpus: article pages, ``/<site>/`` fronts, feeds, sitemaps and ``/robots.txt``.

    Feed and sitemap links are absolute, built from the address the request came in on.
    """
    return growing_corpus_app(lambda: corpus)


def growing_corpus_app(current: Callable[[], Corpus]) -> web.Application:
    """`corpus_app` for a corpus that changes while served (a site publishing as it goes): every request
    is answered from `current()`, so only its pages exist and its feeds list only them."""

    def base(request: web.Request) -> str:
        return f"{request.scheme}://{request.host}"

    def site_of(request: web.Request, corpus: Corpus) -> str:
        slug = request.match_info["site"]
        if slug not in {site.slug for site in corpus.sites}:
            raise web.HTTPNotFound
        return slug

    async def article(request: web.Request) -> web.Response:
        page = current().by_url.get(request.path)
        if page is None:
            raise web.HTTPNotFound
        return web.Response(body=page.html.encode(), content_type="text/html", charset="utf-8")

    async def home(request: web.Request) -> web.Response:
        corpus = current()
        return web.Response(text=corpus.home_html(site_of(request, corpus)), content_type="text/html")

    async def feed(request: web.Request) -> web.Response:
        corpus = current()
        slug = site_of(request, corpus)
        kind = "application/atom+xml" if SITES_BY_SLUG[slug].feed_format == "atom" else "application/rss+xml"
        return web.Response(text=corpus.feed_xml(slug, base(request)), content_type=kind)

    async def sitemap(request: web.Request) -> web.Response:
        corpus = current()
        return web.Response(
            text=corpus.sitemap_xml(site_of(request, corpus), base(request)), content_type="application/xml"
        )

    async def robots(request: web.Request) -> web.Response:
        return web.Response(text=current().robots_txt(base(request)), content_type="text/plain")

    app = web.Application()
    app.router.add_get("/robots.txt", robots)
    app.router.add_get("/{site}/", home)
    app.router.add_get("/{site}/feed.xml", feed)
    app.router.add_get("/{site}/sitemap.xml", sitemap)
    app.router.add_get("/{site}/news/{slug}.html", article)
    return app


if __name__ == "__main__":  # pragma: no cover - manual look at a page
    import sys

    sample = generate_corpus(int(sys.argv[1]) if len(sys.argv) > 1 else 20)
    print(sample.pages[-1].html)
