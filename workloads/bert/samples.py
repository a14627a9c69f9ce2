"""Sentence pairs written for this project (MRPC-style: news sentences, paraphrases and near misses).

Each triple is (sentence, a paraphrase of it, a sentence on the same subject that says something
else). The load test sends the pairs; the tests check that an embedding model scores every
paraphrase above its near miss.
"""

from __future__ import annotations

TRIPLES: tuple[tuple[str, str, str], ...] = (
    (
        "The company said its quarterly profit rose 12 percent on strong sales of its new phones.",
        "Strong demand for its new phones lifted the company's quarterly profit by 12 percent, it said.",
        "The company said it will stop selling phones next year and focus on software.",
    ),
    (
        "The central bank left interest rates unchanged on Thursday.",
        "On Thursday the central bank decided not to change interest rates.",
        "The central bank's governor will retire at the end of the year.",
    ),
    (
        "Heavy rain caused flooding in several villages along the river.",
        "Several riverside villages were flooded after heavy rainfall.",
        "The river is a popular destination for summer kayaking trips.",
    ),
    (
        "The suspect was arrested at the airport as he tried to board a flight to Madrid.",
        "Police detained the suspect at the airport while he was boarding a plane for Madrid.",
        "The airport opened a new terminal for flights to Spain last month.",
    ),
    (
        "Shares of the airline fell sharply after it cut its forecast for the year.",
        "The airline's stock dropped steeply when it lowered its annual outlook.",
        "The airline added three new routes to Asia this summer.",
    ),
    (
        "The researchers found that the drug reduced symptoms in most patients.",
        "Most patients had fewer symptoms after taking the drug, the researchers found.",
        "The researchers are recruiting patients for a second trial of the drug.",
    ),
    (
        "The senator announced she will not seek re-election next year.",
        "The senator said she won't run for another term next year.",
        "The senator introduced a bill to fund rural hospitals.",
    ),
    (
        "The museum will be closed for renovation until the spring.",
        "Renovation work will keep the museum shut until spring.",
        "The museum bought a rare painting at an auction in London.",
    ),
    (
        "The team won the championship after beating their rivals 3-1 in the final.",
        "A 3-1 victory over their rivals in the final gave the team the championship.",
        "The team's coach was fined for criticising the referee after the final.",
    ),
    (
        "The software update fixes a security flaw that let attackers read private messages.",
        "A security hole allowing attackers to read private messages is patched by the update.",
        "The software update adds dark mode and new emoji to the messaging app.",
    ),
)


def pairs() -> list[tuple[str, str]]:
    """Return every (sentence, paraphrase) and (sentence, near miss) pair, alternating."""
    out: list[tuple[str, str]] = []
    for anchor, paraphrase, other in TRIPLES:
        out += [(anchor, paraphrase), (anchor, other)]
    return out
