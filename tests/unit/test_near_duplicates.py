"""Near-duplicate detection on a labelled set of syndicated copies and hard negatives.

The set: the demo site's stories (`pipeline/demo/content.py`) and eighteen short stories written for this
file. Among the invented stories are three pairs of *different write-ups of the same event* (same facts,
names, numbers and one shared verbatim quote, independently worded) and three *follow-ups* that repeat one
background paragraph of an earlier story word for word and add new reporting. Every story gets eleven
syndication variants (wire credits swapped, an "Also read" box, another headline, a paragraph dropped from
the middle or the end, a rolling "UPDATE:" paragraph, two paragraphs swapped, typos and typographic quotes,
an editor's note, a curly-apostrophe editor's note, and all of the rough ones at once).

Measured on this set (``pytest -s -k labelled`` prints it again):

- original against each variant, 276 pairs (25 stories x 11 variants, and the demo site's syndicated
  copy): all 251 single-edit variants are found by the index (similarity() says copy *and* the two share
  an LSH band key); the stacked variant is found for 22 of 25 stories. Recall 0.989.
- every pair of the 301 documents (45,150 pairs; positive when both come from the same story, which also
  counts variant against variant): 1,662 positive, 43,488 negative. similarity() alone: recall 0.983,
  precision 1.000. The index (LSH candidate and similarity()): recall 0.978, precision 1.000 (no false
  match). LSH candidate rate: 0.993 of positive pairs, 0 of negative pairs.
- hardest cases: the lowest Jaccard estimate of a positive pair is 0.33 (two differently cut copies of
  the rate story); the highest Jaccard of a negative pair is 0.14 and the highest containment 0.28 (an
  original and its follow-up). Different write-ups of one event, even sharing a verbatim quote, stay
  at Jaccard <= 0.07 and containment <= 0.13.

Probes outside the asserted set (not tests): a follow-up of six new paragraphs is kept apart while it
repeats up to three of its original's six paragraphs; with four the hospital follow-up is merged (the
mosaic one at five, the battery one not even at five); a copy truncated to its first half or more is
found in 69 of 71 cases, to its first third in 9 of 21 (LSH).

Known problems, each pinned by a strict xfail below: a copy cut to its first paragraphs passes similarity()
on containment but is rarely an LSH candidate; two editions of a templated daily report (fuel prices) are
merged although their figures differ; three of the stacked variants are missed.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from functools import cache

import pytest

from pipeline.dedup.fingerprint import content_hash
from pipeline.dedup.near import Fingerprint, Similarity, band_keys, fingerprint, similarity
from pipeline.demo.content import ARTICLES, SEED_ARTICLE, SYNDICATED_COPY


@dataclass(frozen=True)
class Story:
    key: str
    headline: str
    paragraphs: tuple[str, ...]
    update: str


# --- invented stories -------------------------------------------------------------------------------


def story(key: str, headline: str, text: str) -> Story:
    blocks = [" ".join(block.split()) for block in re.split(r"\n\s*\n", text.strip())]
    *paragraphs, update = blocks
    assert update.startswith("UPDATE: ")
    return Story(key, headline, tuple(paragraphs), update)


# Each text: the story's paragraphs, then the rolling update a copy may append ("UPDATE: ...").


# The same event written up twice, independently: a bridge closure, a wildfire, a rate decision.

BRIDGE_LOCAL = story(
    "bridge-local",
    "Harlow Street bridge shut after inspectors find cracked girder",
    """
        Marden's Harlow Street bridge was closed to all traffic on Wednesday afternoon after a routine
        inspection found a crack nearly 40 centimetres long in one of the steel girders that carry the road
        deck over the railway.

        The council said the crossing, which carries about 14,000 vehicles a day, would stay shut for at least
        six weeks while engineers work out how badly the beam is damaged and whether neighbouring girders have
        the same fault.

        Pedestrians and cyclists are also barred. Diversions send drivers more than three kilometres east
        through the Quarry Lane junction, and the number 7 and 12 buses will run on a temporary route from
        Thursday morning.

        Karen Adeyemi, the council's head of highways, said the crack had been found by a contractor using
        ultrasonic testing during a scheduled check. "We are not prepared to take any risk with a structure
        like this. Nobody should try to get past the barriers," she said.

        The bridge was built in 1962 and was last strengthened in 2004. A report presented to councillors in
        March listed it among eleven structures in the district needing major repairs within five years, at an
        estimated cost of £3.2 million for Harlow Street alone.

        Shopkeepers on the west side of the bridge said they feared a long closure would cost them trade in
        the run-up to the summer. Network Rail said train services beneath the bridge were running normally.

        UPDATE: The council said on Thursday evening that a second, smaller crack had been found in an
        adjacent girder and that the closure would now last at least ten weeks.
        """,
)

BRIDGE_WIRE = story(
    "bridge-wire",
    "Crack in steel beam closes busy Marden road bridge for six weeks",
    """
        A road bridge used by some 14,000 vehicles daily in the town of Marden has been shut for a minimum of
        six weeks after engineers discovered a 40 cm fracture in a steel beam, local officials said on
        Wednesday.

        The fault in the Harlow Street crossing, which spans the main railway line, came to light when a
        contractor carried out ultrasonic tests as part of a planned inspection, according to the district
        council.

        "We are not prepared to take any risk with a structure like this. Nobody should try to get past the
        barriers," said Karen Adeyemi, who leads the council's highways team.

        Motorists face a detour of over three kilometres via the Quarry Lane junction, while walkers and
        cyclists are also banned from using the bridge. Two bus routes, the 7 and the 12, are being diverted.

        Council papers published in March put the cost of major repairs to the 1962 structure at £3.2 million
        and named it as one of eleven bridges in the area that would need significant work within five years.
        It was last reinforced in 2004.

        Rail traffic passing below the bridge has not been affected, Network Rail said. Engineers will now
        check whether other beams on the span show similar damage.

        UPDATE: Marden council later said a second crack had been found on a neighbouring beam, and that the
        bridge would remain closed for ten weeks or more.
        """,
)

FIRE_LOCAL = story(
    "fire-local",
    "Wildfire forces 3,000 people from homes near Cedar Falls",
    """
        About 3,000 residents of Cedar Falls and two neighbouring villages were ordered to leave their homes
        on Saturday as a wildfire driven by gusting winds burned across 4,200 hectares of dry scrub and pine
        forest in the hills west of town.

        County fire chief Maria Ostrander said more than 600 firefighters, supported by eight helicopters and
        two water-bombing planes, were working on the blaze, which was 15 percent contained by Saturday
        evening.

        Two houses and several farm buildings on Ridge Road had been destroyed, she said. No injuries had been
        reported, though one firefighter was treated for heat exhaustion.

        An evacuation centre has opened at Cedar Falls High School, where the Red Cross was handing out food,
        water and camp beds. Residents were told to take medicines and documents with them and not to return
        until the order is lifted.

        Forecasters expect winds of up to 60 kilometres per hour through Sunday, with temperatures in the
        mid-30s and humidity below 10 percent, conditions that Ostrander described as "about as bad as it gets
        for us."

        The cause of the fire is under investigation. It was first reported by a hiker shortly after 11 a.m.
        near the Pike Creek trailhead.

        UPDATE: Fire officials said late on Saturday that the evacuation zone had been widened to include the
        Lower Mill estate, adding about 400 more residents.
        """,
)

FIRE_WIRE = story(
    "fire-wire",
    "Thousands evacuated as wind-driven blaze burns 4,200 hectares west of Cedar Falls",
    """
        Firefighters battled through Saturday to hold back a fast-moving blaze in the hills outside Cedar
        Falls that had blackened roughly 4,200 hectares by nightfall and prompted evacuation orders for around
        3,000 people.

        A hiker raised the alarm just after 11 in the morning from the Pike Creek trailhead, and strong winds
        quickly pushed the flames through pine woodland and dry brush, officials said. Investigators have not
        yet determined what started it.

        Over 600 crew members are on the fire lines, backed by eight helicopters and a pair of air tankers. By
        evening, crews had built containment lines around 15 percent of the perimeter, according to county
        fire chief Maria Ostrander.

        Ostrander said two homes and a number of outbuildings along Ridge Road had burned. A firefighter
        received treatment for heat exhaustion, but there were no other injuries.

        Evacuees were directed to a Red Cross shelter in the high school gym. The weather offers little
        relief: gusts could reach 60 km/h on Sunday, with highs in the mid-30s Celsius and very low humidity,
        a combination Ostrander called "about as bad as it gets for us."

        UPDATE: About 400 more people in the Lower Mill estate were told to leave late on Saturday as the
        evacuation area grew.
        """,
)

RATE_LOCAL = story(
    "rate-local",
    "Valmora's central bank raises key rate to 4.75% to cool inflation",
    """
        The Reserve Bank of Valmora raised its benchmark interest rate by a quarter of a percentage point to
        4.75 percent on Tuesday, its third increase this year, saying inflation was proving more stubborn than
        it had expected.

        Consumer prices rose 5.8 percent in the year to September, well above the bank's target range of 2 to
        3 percent, driven by higher rents, electricity bills and the cost of imported food.

        Governor Lidia Moravec told reporters that the board had discussed a larger half-point move but
        decided against it because there were early signs that household spending was slowing. "We will do
        what is needed, but we do not want to do more than is needed," she said.

        Six of the seven board members voted for the increase. One, economist Pavel Hrdina, voted to leave
        rates unchanged, citing the risk to jobs in construction and manufacturing.

        The decision had been expected by most economists surveyed before the meeting. The Valmoran crown
        edged up 0.3 percent against the euro after the announcement, and yields on two-year government bonds
        rose slightly.

        Mortgage lenders are expected to pass on the increase within weeks. The bank's next policy meeting is
        scheduled for December 12.

        UPDATE: Two of the country's largest lenders said on Tuesday afternoon that they would raise their
        variable mortgage rates by 0.25 points from next month.
        """,
)

RATE_WIRE = story(
    "rate-wire",
    "Rate rise: Valmora's central bank lifts borrowing costs for third time this year",
    """
        Borrowers in Valmora face higher repayments after the central bank on Tuesday lifted its main policy
        rate by 25 basis points to 4.75 percent, its third hike of the year, in a bid to bring down persistent
        inflation.

        Annual inflation stood at 5.8 percent in September, nearly double the top of the Reserve Bank's 2 to 3
        percent goal. Rents, power prices and imported groceries have been the biggest contributors.

        The move was widely anticipated by analysts. The crown firmed by 0.3 percent against the euro, and
        short-dated bond yields ticked higher.

        Governor Lidia Moravec said policymakers had weighed a 50 basis point rise but held back as consumer
        spending appeared to be losing momentum. "We will do what is needed, but we do not want to do more
        than is needed," she told a news conference.

        The vote was six to one. Pavel Hrdina, the lone dissenter, favoured holding rates steady because of
        concerns over employment in building and factory work.

        Banks are likely to raise mortgage rates in the coming weeks. Policymakers meet next on December 12.

        UPDATE: Two big lenders have since announced a 0.25-point rise in variable mortgage rates, effective
        next month.
        """,
)

# Originals and their follow-ups (each follow-up repeats one background paragraph of its original).

HOSPITAL = story(
    "hospital",
    "Ransomware attack forces St Brennan's Hospital to divert ambulances",
    """
        St Brennan's Hospital in Eastmoor diverted ambulances to other hospitals on Monday after a ransomware
        attack knocked out its computer systems, including the software used to book scans and view patients'
        test results.

        The hospital trust said the attack was detected at around 4 a.m., when staff found they could not log
        in to several clinical systems. Doctors and nurses switched to paper records, and some outpatient
        appointments were cancelled.

        Chief executive Andrew Mbeki said emergency care was continuing for patients who arrive on foot, but
        that ambulances carrying the most seriously ill patients had been sent to Westfield General and the
        Royal Infirmary as a precaution.

        The trust has informed the police and the national cyber security agency, which said it was working
        with the hospital to understand the scale of the incident. It is not yet known whether any patient
        data was taken.

        St Brennan's serves around 450,000 people across Eastmoor and the surrounding district and has 780
        beds. It was one of several hospitals warned last year that parts of its network relied on software
        that was no longer supported by the vendor.

        Patients with appointments this week have been asked to attend unless they are contacted by the
        hospital.

        UPDATE: The trust said on Monday evening that ambulance diversions would continue overnight and that
        planned surgery on Tuesday had been postponed.
        """,
)

HOSPITAL_FOLLOW_UP = story(
    "hospital-follow-up",
    "St Brennan's Hospital says patient records were copied in ransomware attack",
    """
        Hackers copied the personal details of tens of thousands of patients during last week's ransomware
        attack on St Brennan's Hospital, the hospital trust confirmed on Friday, as its main computer systems
        came back online.

        The trust said names, dates of birth, addresses and some appointment records had been taken from a
        server used by the radiology department. Investigators had found no evidence that full medical
        histories or payment details were accessed.

        A criminal group has claimed responsibility on a leak site and threatened to publish the data unless a
        ransom is paid. The trust said it would not pay, in line with government guidance.

        St Brennan's serves around 450,000 people across Eastmoor and the surrounding district and has 780
        beds. It was one of several hospitals warned last year that parts of its network relied on software
        that was no longer supported by the vendor.

        Ambulances resumed taking patients to the hospital's emergency department on Thursday. Chief executive
        Andrew Mbeki said about 1,900 outpatient appointments and 140 planned operations had been postponed
        since the attack and would be rebooked over the coming weeks.

        Patients whose data was affected will receive letters, and a helpline has opened. The information
        commissioner's office said it was making inquiries.

        UPDATE: The trust said on Saturday that the helpline had taken more than 3,000 calls in its first day.
        """,
)

MOSAIC = story(
    "mosaic",
    "Roman mosaic uncovered beneath Thornbury car park",
    """
        Archaeologists digging ahead of a housing development in Thornbury have uncovered a large Roman mosaic
        floor beneath what was, until last spring, the town's Mill Lane car park.

        The mosaic, about six metres by four, shows a central panel of a hunting scene surrounded by geometric
        borders in red, white and dark blue tiles. Experts believe it formed the floor of a dining room in a
        wealthy villa built in the late third or early fourth century.

        Site director Helen Okonkwo said the floor was in remarkably good condition for its age, with only one
        corner damaged by a Victorian drain. "When the first section of the hunting scene appeared, the whole
        team stopped working and just stared," she said.

        The excavation, paid for by developer Greystone Homes as a condition of its planning permission, has
        also found coins, pottery and the remains of a heating system beneath another room.

        Thornbury was known to have been a small Roman settlement on the road between two larger towns, but no
        buildings of this size had been found there before. Historians say the villa suggests the area was
        wealthier than previously thought.

        The site will be open to the public for two days next weekend before the mosaic is covered over to
        protect it while its future is decided.

        UPDATE: Greystone Homes said on Wednesday that it would pause building work on the part of the site
        nearest the villa while options are discussed.
        """,
)

MOSAIC_FOLLOW_UP = story(
    "mosaic-follow-up",
    "Thornbury's Roman mosaic to be lifted and put on display in town museum",
    """
        The Roman mosaic found beneath a former car park in Thornbury this summer will be lifted in sections
        and put on permanent display at the town museum, the district council announced on Thursday.

        Specialist conservators will spend about three months cutting the floor into numbered panels, backing
        each one with a lightweight support and reassembling it in a new gallery that will open in 2026.

        The work will cost an estimated £850,000. Developer Greystone Homes has agreed to contribute £300,000,
        with the rest coming from a heritage lottery grant and a public appeal that has already raised more
        than £60,000.

        The mosaic, about six metres by four, shows a central panel of a hunting scene surrounded by geometric
        borders in red, white and dark blue tiles. Experts believe it formed the floor of a dining room in a
        wealthy villa built in the late third or early fourth century.

        More than 7,000 people visited the site during two open days in August, queueing for up to three
        hours. Museum curator Dev Pillai said the response showed how much local people wanted the find to
        stay in Thornbury rather than go to a national collection.

        Some residents had campaigned for the floor to be left in place and the housing scheme redesigned
        around it, but the council said that was not practical because the site would be exposed to frost and
        flooding.

        UPDATE: The museum said on Friday that the new gallery would be named after the archaeologist who led
        the dig.
        """,
)

BATTERY = story(
    "battery",
    "Battery factory promises 1,200 jobs for Lowmoor",
    """
        A company that makes batteries for electric buses and lorries plans to build a factory on the former
        Lowmoor colliery site, creating around 1,200 jobs, it announced on Tuesday.

        Voltaris Energy said it would invest £640 million in the plant, which would produce battery packs with
        a combined capacity of 8 gigawatt hours a year when fully running. Construction is due to start next
        year if planning permission is granted.

        The company's chief executive, Ingrid Solberg, said Lowmoor had been chosen because of its rail
        connection, the availability of a large flat site and the skills of workers who had moved into
        engineering after the colliery closed in 1994.

        The regional mayor, Tom Hesketh, called the announcement "the biggest vote of confidence in this area
        for a generation" and said the local college would set up courses to train technicians for the plant.

        Unemployment in Lowmoor is about 7 percent, almost twice the national rate. The colliery site has
        stood largely empty for three decades apart from a small business park at its northern edge.

        Environmental groups welcomed the investment but said they would scrutinise the company's plans for
        water use and for handling chemicals on a site close to the River Lyne.

        UPDATE: Voltaris Energy said it expected to submit its planning application by the end of March and to
        hold public meetings in Lowmoor beforehand.
        """,
)

BATTERY_FOLLOW_UP = story(
    "battery-follow-up",
    "Councillors approve Lowmoor battery factory despite concerns over river",
    """
        Plans for a £640 million battery factory on the old Lowmoor colliery site were approved by the
        district council's planning committee on Monday night, after a four-hour meeting in which residents
        raised concerns about the River Lyne.

        Councillors voted nine to three in favour. Conditions attached to the permission require Voltaris
        Energy to recycle most of the water used in production and to fund monitoring of the river for ten
        years.

        Objectors, including an angling club and two parish councils, argued that the factory would draw too
        much water in dry summers and that a chemical spill could reach the river within minutes. The
        Environment Agency did not object, subject to the conditions.

        Unemployment in Lowmoor is about 7 percent, almost twice the national rate. The colliery site has
        stood largely empty for three decades apart from a small business park at its northern edge.

        Voltaris said it would begin preparing the site in the spring and expected the first production line
        to start in 2027. The company has said the factory will eventually employ about 1,200 people.

        Committee chair Sandra Boateng said the decision had not been easy. "We have listened carefully to
        people's worries about the river, and the conditions we have set are some of the strictest this
        council has ever imposed," she said.

        UPDATE: Objectors said on Tuesday that they were considering asking for a judicial review of the
        decision.
        """,
)

# Unrelated stories.

CUP_TIE = story(
    "cup-tie",
    "Ashcombe Rovers knock holders out of county cup on penalties",
    """
        Part-time Ashcombe Rovers caused the upset of the county cup's third round on Saturday, beating
        holders Kingsford City 5-4 on penalties after a 1-1 draw in front of a record crowd of 2,300 at Mead
        Park.

        City, who play two divisions higher, took the lead after 23 minutes when Jordan Ellis headed in a
        corner. They had several chances to extend their lead before half-time, with Rovers goalkeeper Sam
        Pryce saving twice from close range.

        Rovers equalised with eight minutes of normal time left. Substitute Kieran Doyle, a postman who had
        worked an early shift that morning, ran onto a long clearance and lifted the ball over the advancing
        goalkeeper.

        Neither side could find a winner in extra time, and the first eight penalties were all scored before
        Pryce dived to his left to push away City captain Marcus Reid's kick. Defender Luke Hammond then sent
        the home fans onto the pitch with the decisive spot kick.

        Rovers manager Gary Finch said he had never seen his squad work so hard. "Half of these lads were at
        work this morning. To beat a side like that is something they will tell their grandchildren about," he
        said.

        The draw for the quarter-finals takes place on Monday evening. Rovers are the only club from outside
        the top two regional divisions left in the competition.

        UPDATE: The quarter-final draw on Monday paired Ashcombe Rovers with Brinton Athletic, with the match
        to be played at Mead Park on February 14.
        """,
)

SATELLITE = story(
    "satellite",
    "Student-built satellite sends first signals after reaching orbit",
    """
        A small satellite designed and built by students at the University of Norrvik sent its first signals
        to a ground station on campus on Sunday, hours after it was carried into orbit on a commercial
        rideshare launch.

        The satellite, about the size of a loaf of bread and weighing 2.6 kilograms, is one of 47 small
        spacecraft that were released from the rocket's upper stage at an altitude of about 520 kilometres.

        Its main instrument is a camera that will photograph sea ice in the Arctic, and the team hopes to
        compare its images with those from much larger government satellites to test whether low-cost designs
        can produce useful data.

        Project lead Ana Lindqvist, a doctoral student in space engineering, said about 60 students had worked
        on the satellite over four years. "We heard the first beacon at 9.14 in the evening and the room just
        exploded," she said.

        The project cost about 180,000 euros, most of it covered by a grant from a national space agency
        programme that funds student missions. Radio amateurs around the world have been invited to listen for
        the satellite and report its signals.

        The team will spend the next two weeks testing the satellite's systems before switching on the camera.
        If all goes well, it is expected to operate for at least two years before its orbit decays.

        UPDATE: The university said on Tuesday that the satellite's solar panels had deployed correctly and
        its batteries were fully charged.
        """,
)

FROST = story(
    "frost",
    "Late frost destroys much of Severn Valley apricot crop",
    """
        Apricot growers in the Severn Valley expect to lose more than half of this year's harvest after two
        nights of hard frost last week killed blossom and young fruit across hundreds of hectares of orchards.

        Temperatures fell to minus 4 degrees Celsius in low-lying orchards on Wednesday and Thursday nights,
        according to the regional growers' association, which said it was the worst spring frost in the valley
        since 1997.

        Some farmers lit fires and ran wind machines through the night to keep cold air from settling among
        the trees, but association chair Rosa Delgado said those measures had only saved fruit on the higher
        slopes.

        "You can walk down a row and every flower is brown inside. There is nothing you can do once that
        happens," said Delgado, who farms 40 hectares near the village of Alderton.

        The valley produces about 12,000 tonnes of apricots in a normal year, most of which are sold fresh to
        supermarkets. Growers said shoppers should expect higher prices and more imported fruit this summer.

        The association has asked the agriculture ministry to open its emergency support fund to affected
        farms, as it did after hailstorms in 2019. The ministry said it would send inspectors to assess the
        damage.

        UPDATE: The agriculture ministry said on Monday that affected growers would be able to apply for
        emergency support from next week.
        """,
)

NIGHT_BUSES = story(
    "night-buses",
    "Night bus network to grow to twelve routes from March",
    """
        Late-night bus services in Brackton will expand from five routes to twelve from March, the city's
        transport authority said on Thursday, after a trial last year carried more passengers than expected.

        The new routes will run every 30 minutes between midnight and 5 a.m. on Fridays and Saturdays, and
        every hour on other nights. They will link the city centre with the hospital, the airport and the
        large housing estates on the northern and western edges of the city.

        The transport authority said the five trial routes had carried about 410,000 passengers in twelve
        months, around 40 percent more than forecast. Surveys found that more than half were travelling to or
        from work, mostly in hospitals, hotels, warehouses and cleaning.

        The expansion will cost £4.1 million a year, paid for partly by a levy on city-centre bars and clubs
        that stay open after midnight and partly from the authority's own budget.

        Night workers' groups welcomed the plan but said services should also run later on Sunday mornings,
        when many early shifts begin. The authority said it would review the timetable after six months.

        Fares will be the same as on daytime buses, and passengers will be able to use day tickets bought the
        previous evening.

        UPDATE: The transport authority published the full timetable for the twelve routes on Friday and said
        drivers were still being recruited for three of them.
        """,
)

LIBRARY_BOOK = story(
    "library-book",
    "Library book returned 61 years late with a note of apology",
    """
        A copy of a book about birds borrowed from Fenwick public library in 1963 has been returned, with a
        handwritten note apologising for the delay and a 50 pound donation towards the library's children's
        section.

        Librarian Joyce Adair said the book, a field guide to the birds of the coast, arrived in a padded
        envelope on Tuesday with no return address. The library's date stamp inside the cover shows it was due
        back on 14 October 1963.

        In the note, the borrower wrote that they had taken the book on a family holiday as a child, packed it
        in the wrong suitcase and only rediscovered it while clearing out their late mother's loft. "I am
        sorry it took so long. I hope someone else enjoys it as much as I did," the note said.

        Adair said that under the fines the library charged in the 1960s, the book would have run up a debt of
        more than 1,100 pounds, but the library had abolished overdue fines for all borrowers in 2019.

        The book, which has coloured plates of more than 200 species, will go on display in a cabinet by the
        library entrance for a month before returning to the shelves.

        UPDATE: The library said on Thursday that the borrower had since contacted staff and asked to remain
        anonymous.
        """,
)

BANK_FINE = story(
    "bank-fine",
    "Regional building society fined £12 million over outage that froze accounts",
    """
        Northgate Building Society has been fined £12 million by the financial regulator over a computer
        failure that left about 300,000 customers unable to use their accounts for three days last year.

        The outage began during an upgrade of the society's core banking system over a weekend in February.
        Customers could not make payments, withdraw cash or see their balances, and some salaries paid in on
        the Monday did not appear until Wednesday.

        The regulator said Northgate had not tested the upgrade properly and had no workable plan to switch
        back to the old system when problems appeared. It also criticised the society for giving customers
        inaccurate information about when services would be restored.

        Northgate said it accepted the findings and had already paid £9.4 million in compensation to customers
        who incurred late-payment charges or other costs. Chief executive Fiona Marsh said the society had
        "let down people who trusted us with their money."

        The fine would have been £17 million, but it was reduced because the society agreed to settle at an
        early stage of the investigation.

        Northgate, founded in 1871, has about 1.1 million members and 64 branches, mainly in the north of the
        country.

        UPDATE: A customer group representing people affected by the outage said on Wednesday that the
        compensation scheme should be reopened for late claims.
        """,
)

INVENTED: tuple[Story, ...] = (
    BRIDGE_LOCAL,
    BRIDGE_WIRE,
    FIRE_LOCAL,
    FIRE_WIRE,
    RATE_LOCAL,
    RATE_WIRE,
    HOSPITAL,
    HOSPITAL_FOLLOW_UP,
    MOSAIC,
    MOSAIC_FOLLOW_UP,
    BATTERY,
    BATTERY_FOLLOW_UP,
    CUP_TIE,
    SATELLITE,
    FROST,
    NIGHT_BUSES,
    LIBRARY_BOOK,
    BANK_FINE,
)
SAME_EVENT = ((BRIDGE_LOCAL, BRIDGE_WIRE), (FIRE_LOCAL, FIRE_WIRE), (RATE_LOCAL, RATE_WIRE))
FOLLOW_UPS = ((HOSPITAL, HOSPITAL_FOLLOW_UP), (MOSAIC, MOSAIC_FOLLOW_UP), (BATTERY, BATTERY_FOLLOW_UP))

# Rolling updates for the demo stories (written here; the demo site has none).
_DEMO_UPDATES = {
    "putin-advocates-normalising-ties-in-new-year-greetings-to-trump": (
        "UPDATE: A White House spokesman said later on Monday that the president had received the message "
        "and would respond in due course."
    ),
    "general-bipin-rawat-named-india-first-chief-of-defence-staff": (
        "UPDATE: The defence ministry said on Tuesday that the new department would start work with a "
        "staff of about 200 officers and civilians."
    ),
    "onion-prices-begin-to-ease-as-imported-stocks-arrive": (
        "UPDATE: Wholesale prices at Lasalgaon fell again on Monday, traders said, as more lorries of the "
        "new crop arrived."
    ),
    "us-jets-strike-iran-backed-militia-in-iraq-and-syria": (
        "UPDATE: Protesters gathered outside the U.S. embassy in Baghdad on Tuesday, and security forces "
        "closed the roads leading to the diplomatic quarter."
    ),
    "russia-and-ukraine-sign-five-year-gas-transit-deal": (
        "UPDATE: Naftogaz said on Wednesday that gas was flowing normally through the Ukrainian network "
        "after midnight."
    ),
    "smart-speakers-top-holiday-wish-lists": (
        "UPDATE: One manufacturer said on Monday that it would add a spoken privacy reminder to its "
        "speakers' setup routine."
    ),
    "hospitals-report-early-surge-in-flu-cases": (
        "UPDATE: The county health department said on Monday that a third hospital had postponed planned "
        "operations because of flu admissions."
    ),
}
DEMO: tuple[Story, ...] = tuple(
    Story(f"demo-{article.slug}", article.title, article.body_paragraphs, _DEMO_UPDATES[article.slug])
    for article in ARTICLES
    if article.syndicated_from is None
)
STORIES: tuple[Story, ...] = (*DEMO, *INVENTED)

# --- syndication variants ---------------------------------------------------------------------------

_AGENCY_AT_END = re.compile(r"\s*\((?:ANI|PTI|IANS|Reuters|AP|AFP)\)\s*$")
NOT_EDITED = "(This story has not been edited by {site} staff and is auto-generated from a syndicated feed.)"


def body(paragraphs: tuple[str, ...] | list[str]) -> str:
    """Article text as the extractor returns it: one paragraph a line."""
    return "\n".join(paragraphs)


def _without_credit(paragraphs: tuple[str, ...]) -> list[str]:
    return [*paragraphs[:-1], _AGENCY_AT_END.sub("", paragraphs[-1])]


def _wire_credits(paragraphs: tuple[str, ...]) -> list[str]:
    """Whatever agency credit the original had, this site prints other ones."""
    stripped = _without_credit(paragraphs)
    if stripped[-1] != paragraphs[-1]:
        return [*stripped, "(With inputs from PTI)", NOT_EDITED.format(site="Daily Ledger")]
    return [*stripped[:-1], stripped[-1] + " (ANI)", NOT_EDITED.format(site="Harbour Times")]


def _also_read(paragraphs: tuple[str, ...], other: Story) -> list[str]:
    return [*paragraphs[:2], f"Also read: {other.headline}", *paragraphs[2:]]


def _swap(paragraphs: tuple[str, ...] | list[str], first: int) -> list[str]:
    swapped = list(paragraphs)
    swapped[first], swapped[first + 1] = swapped[first + 1], swapped[first]
    return swapped


def _transpose(word: str) -> str:
    return word[0] + word[2] + word[1] + word[3:]


def retyped(text: str) -> str:
    """A copy-editor's and a careless typist's pass: typographic quotes and dashes, three transposed
    letters, "percent" spelt as two words, a few commas gone."""
    text = re.sub(r'"([^"]*)"', "\u201c\\1\u201d", text)
    text = text.replace("'", "\u2019").replace(" -- ", " \u2014 ").replace("percent", "per cent")
    text = text.replace(", and", " and").replace(", but", " but")
    words = text.split(" ")
    long_ones = [index for index, word in enumerate(words) if len(word) >= 6 and word.isalpha()]
    for index in long_ones[5::17][:3]:
        words[index] = _transpose(words[index])
    return " ".join(words)


EDITOR_NOTE = "Editor's note: An earlier version of this story gave the wrong day for the announcement."
EDITOR_NOTE_CURLY = EDITOR_NOTE.replace("'", "\u2019")
VARIANTS = (
    "wire-credits",
    "also-read",
    "headline",
    "drop-middle",
    "drop-last",
    "update",
    "reordered",
    "retyped",
    "editor-note",
    "editor-note-curly",
    "combined",
)


def variant(story: Story, kind: str) -> str:
    paragraphs = story.paragraphs
    middle = len(paragraphs) // 2
    other = STORIES[(STORIES.index(story) + 1) % len(STORIES)]
    if kind == "wire-credits":
        return body(_wire_credits(paragraphs))
    if kind == "also-read":
        return body(_also_read(paragraphs, other))
    if kind == "headline":  # another site's headline; the headline is not part of the body
        return body(paragraphs)
    if kind == "drop-middle":
        return body([p for index, p in enumerate(paragraphs) if index != middle])
    if kind == "drop-last":
        return body(_without_credit(paragraphs)[:-1])
    if kind == "update":
        return body([*paragraphs, story.update])
    if kind == "reordered":
        return body(_swap(paragraphs, middle - 1))
    if kind == "retyped":
        return retyped(body(paragraphs))
    if kind == "editor-note":
        return body([*paragraphs, EDITOR_NOTE])
    if kind == "editor-note-curly":
        return body([EDITOR_NOTE_CURLY, *paragraphs])
    if kind == "combined":
        rough = [p for index, p in enumerate(_wire_credits(paragraphs)) if index != middle]
        return retyped(body(_also_read((*rough, story.update), other)))
    raise ValueError(kind)


# Variants whose body differs from the original's only by boilerplate lines the normaliser removes.
EXACT_VARIANTS = frozenset({"wire-credits", "also-read", "headline", "editor-note"})


@dataclass(frozen=True)
class Document:
    family: str
    label: str
    text: str


def documents() -> list[Document]:
    docs = []
    for story in STORIES:
        docs.append(Document(story.key, f"{story.key}/original", body(story.paragraphs)))
        docs.extend(Document(story.key, f"{story.key}/{kind}", variant(story, kind)) for kind in VARIANTS)
    docs.append(
        Document(f"demo-{SEED_ARTICLE.slug}", "demo/syndicated-copy", body(SYNDICATED_COPY.body_paragraphs))
    )
    return docs


@cache
def fp(text: str) -> Fingerprint:
    return fingerprint(text)


@cache
def keys(text: str) -> frozenset[str]:
    return frozenset(band_keys(fp(text)))


def measure(a: str, b: str) -> Similarity:
    return similarity(fp(a), fp(b))


@cache
def hashed(text: str) -> str:
    return content_hash(text)


def is_copy(a: str, b: str) -> bool:
    return hashed(a) == hashed(b) or measure(a, b).near_duplicate


# --- positives --------------------------------------------------------------------------------------

# Stacking every rough edit (a paragraph dropped, an update added, typos, "per cent") is harsher than any
# single variant; three of the 25 stacked copies are missed, each for a reason the tests pin down.
_STACKED_MISSES = {
    "fire-local": "similarity() calls the stacked copy a near duplicate (Jaccard ~0.58, containment 0.76) "
    "but the two signatures share none of the 32 LSH bands, so the index never compares them",
    "rate-local": "the stacked copy falls below both thresholds (Jaccard ~0.49, containment ~0.67): "
    "'percent' appears six times and each 'per cent' rewrite costs five shingles",
    "rate-wire": "the stacked copy falls below both thresholds (Jaccard ~0.40, containment ~0.61): "
    "'percent' appears five times and each 'per cent' rewrite costs five shingles",
}
POSITIVES = [
    pytest.param(
        story,
        kind,
        id=f"{story.key}/{kind}",
        marks=pytest.mark.xfail(strict=True, reason=_STACKED_MISSES[story.key])
        if kind == "combined" and story.key in _STACKED_MISSES
        else (),
    )
    for story in STORIES
    for kind in VARIANTS
]


@pytest.mark.parametrize(("story", "kind"), POSITIVES)
def test_syndicated_variant_is_a_copy_and_an_lsh_candidate(story: Story, kind: str) -> None:
    original, copy = body(story.paragraphs), variant(story, kind)
    assert copy != original or kind == "headline"
    measured = measure(original, copy)
    assert is_copy(original, copy), f"{story.key}/{kind}: {measured}"
    assert keys(original) & keys(copy), f"{story.key}/{kind} shares no LSH band with its original"


@pytest.mark.parametrize("kind", sorted(EXACT_VARIANTS))
@pytest.mark.parametrize("story", STORIES, ids=[story.key for story in STORIES])
def test_boilerplate_only_variants_keep_the_content_hash(story: Story, kind: str) -> None:
    assert content_hash(variant(story, kind)) == content_hash(body(story.paragraphs))


def test_demo_syndicated_copy_is_an_exact_copy() -> None:
    seed, copy = body(SEED_ARTICLE.body_paragraphs), body(SYNDICATED_COPY.body_paragraphs)
    assert content_hash(seed) == content_hash(copy)
    assert measure(seed, copy).jaccard == 1.0


def test_editor_note_with_typographic_apostrophe_keeps_the_content_hash() -> None:
    original = body(SATELLITE.paragraphs)
    assert content_hash(EDITOR_NOTE_CURLY + "\n" + original) == content_hash(original)


@pytest.mark.xfail(
    strict=True,
    reason="a copy that keeps only the first third of a story is contained in it (containment ~1.0, "
    "Jaccard ~0.35) and similarity() calls it a copy, but at Jaccard 0.35 two signatures share one of "
    "32 bands of 4 rows only about a third of the time: here they share none, so the index never "
    "compares them",
)
def test_copy_truncated_to_its_first_paragraphs_is_found_by_the_index() -> None:
    original, truncated = body(HOSPITAL.paragraphs), body(HOSPITAL.paragraphs[:2])
    assert is_copy(original, truncated), measure(original, truncated)
    assert keys(original) & keys(truncated)


# --- negatives --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("first", "second"), SAME_EVENT, ids=[a.key for a, _ in SAME_EVENT])
def test_different_write_ups_of_the_same_event_are_not_copies(first: Story, second: Story) -> None:
    for kind_a, kind_b in itertools.product(("original", *VARIANTS), repeat=2):
        a = body(first.paragraphs) if kind_a == "original" else variant(first, kind_a)
        b = body(second.paragraphs) if kind_b == "original" else variant(second, kind_b)
        assert not is_copy(a, b), f"{first.key}/{kind_a} ~ {second.key}/{kind_b}: {measure(a, b)}"


@pytest.mark.parametrize(("original", "follow_up"), FOLLOW_UPS, ids=[a.key for a, _ in FOLLOW_UPS])
def test_follow_ups_are_not_copies(original: Story, follow_up: Story) -> None:
    shared = set(original.paragraphs) & set(follow_up.paragraphs)
    assert len(shared) == 1, "a follow-up repeats exactly one background paragraph"
    for kind_a, kind_b in itertools.product(("original", *VARIANTS), repeat=2):
        a = body(original.paragraphs) if kind_a == "original" else variant(original, kind_a)
        b = body(follow_up.paragraphs) if kind_b == "original" else variant(follow_up, kind_b)
        assert not is_copy(a, b), f"{original.key}/{kind_a} ~ {follow_up.key}/{kind_b}: {measure(a, b)}"


def test_different_stories_are_not_copies() -> None:
    for first, second in itertools.combinations(STORIES, 2):
        a, b = body(first.paragraphs), body(second.paragraphs)
        assert not is_copy(a, b), f"{first.key} ~ {second.key}: {measure(a, b)}"
        assert not keys(a) & keys(b), f"{first.key} and {second.key} share an LSH band"


def _fuel_report(day: str, petrol: str, diesel: str, change: str, cities: tuple[str, ...]) -> str:
    return body(
        (
            f"Petrol and diesel prices were revised by state-run fuel retailers on {day} morning. In the "
            f"capital, petrol now costs {petrol} per litre and diesel {diesel} per litre, a change of "
            f"{change} from the previous day.",
            f"Prices in other cities were: Northport petrol {cities[0]}, Eastmoor petrol {cities[1]}, "
            f"Brackton petrol {cities[2]} and Lowmoor petrol {cities[3]} per litre.",
            "Fuel prices are revised daily at 6 a.m. in line with international crude prices and the "
            "exchange rate. Retail prices include excise duty, the dealer's commission and value added tax, "
            "which differs from state to state.",
            "Customers can check the latest rates by sending a text message with their city code to the "
            "number printed at their local filling station, or on the retailers' websites and mobile apps.",
            "Crude oil prices have been volatile this month because of supply cuts announced by producing "
            "countries and worries about slowing demand in the largest economies.",
        )
    )


@pytest.mark.xfail(
    strict=True,
    reason="two days' editions of a templated report (same boilerplate sentences, different figures) "
    "score Jaccard ~0.6 and are merged as near duplicates although they report different prices",
)
def test_templated_daily_reports_with_different_figures_are_not_copies() -> None:
    monday = _fuel_report("Monday", "96.72", "89.62", "12 paise", ("106.31", "102.63", "106.03", "96.58"))
    tuesday = _fuel_report("Tuesday", "96.84", "89.70", "8 paise", ("106.45", "102.71", "106.22", "96.60"))
    assert not is_copy(monday, tuesday), measure(monday, tuesday)


# --- the whole labelled set -------------------------------------------------------------------------


def test_labelled_set_recall_and_precision() -> None:
    """Every pair of documents, positive when both come from the same story. A pair is *found* when
    similarity() (or the content hash) calls it a copy, and *found by the index* when it is also an LSH
    candidate (the two share a band key), which is what the streaming index needs to compare it at all.
    The project's goal: recall >= 0.95 at precision >= 0.99."""
    docs = documents()
    counts = {(same, found, candidate): 0 for same in (True, False) for found in (True, False)
              for candidate in (True, False)}  # fmt: skip
    lowest_positive: tuple[float, str, str] = (2.0, "", "")
    highest_negative = {"jaccard": (-1.0, "", ""), "containment": (-1.0, "", "")}
    for a, b in itertools.combinations(docs, 2):
        same = a.family == b.family
        counts[same, is_copy(a.text, b.text), bool(keys(a.text) & keys(b.text))] += 1
        measured = measure(a.text, b.text)
        if same:
            lowest_positive = min(lowest_positive, (measured.jaccard, a.label, b.label))
        else:
            for name, value in (("jaccard", measured.jaccard), ("containment", measured.containment)):
                highest_negative[name] = max(highest_negative[name], (value, a.label, b.label))

    def total(same: bool, found: bool | None = None, candidate: bool | None = None) -> int:
        return sum(
            count
            for (s, f, c), count in counts.items()
            if s == same and found in (None, f) and candidate in (None, c)
        )

    originals = {doc.family: doc.text for doc in docs if doc.label.endswith("/original")}
    copies = [doc for doc in docs if not doc.label.endswith("/original")]
    versus_original = sum(
        is_copy(originals[doc.family], doc.text) and bool(keys(originals[doc.family]) & keys(doc.text))
        for doc in copies
    )
    positives, negatives = total(True), total(False)
    found, indexed = total(True, found=True), total(True, found=True, candidate=True)
    false_found, false_indexed = total(False, found=True), total(False, found=True, candidate=True)
    recall, index_recall = found / positives, indexed / positives
    precision = found / (found + false_found)
    index_precision = indexed / (indexed + false_indexed)
    candidate_rate = total(True, candidate=True) / positives, total(False, candidate=True) / negatives
    print(
        f"\noriginal against its variants: found by the index {versus_original} / {len(copies)}"
        f"\ndocuments {len(docs)}, pairs {positives + negatives:,}: positive {positives:,}, negative "
        f"{negatives:,}\nsimilarity(): recall {recall:.4f} ({found:,} / {positives:,}), precision "
        f"{precision:.4f} ({false_found} false)\nindex (LSH candidate and similarity()): recall "
        f"{index_recall:.4f} ({indexed:,} / {positives:,}), precision {index_precision:.4f} "
        f"({false_indexed} false)\nLSH candidate rate: positives {candidate_rate[0]:.4f}, negatives "
        f"{candidate_rate[1]:.5f}\nlowest positive Jaccard {lowest_positive}\n"
        f"highest negative Jaccard {highest_negative['jaccard']}\n"
        f"highest negative containment {highest_negative['containment']}"
    )
    assert positives > 1500
    assert negatives > 40_000
    assert index_recall >= 0.95
    assert index_precision >= 0.99
