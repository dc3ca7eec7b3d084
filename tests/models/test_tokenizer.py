from __future__ import annotations

from leanvla.models.tokenizer import BOS, PAD, InstructionTokenizer


def test_ids_are_stable_and_case_insensitive():
    tok = InstructionTokenizer(vocab_size=4096, max_length=8)
    assert tok.encode("Close the drawer") == tok.encode("close  the drawer!")
    assert tok.encode("close the drawer")[0] == BOS
    assert len(tok.encode("a b c d e f g h i j k")) == 8
    # CRC-32 hashing: the same word always gets the same id (no vocabulary file to lose)
    assert tok.token_id("drawer") == InstructionTokenizer(4096).token_id("drawer")


def test_batch_pads_to_the_longest_text():
    ids, mask = InstructionTokenizer().batch(["reach the goal", "open the door now please"])
    assert ids.shape == (2, 6)
    assert mask.sum(1).tolist() == [4, 6]
    assert ids[0, 4:].tolist() == [PAD, PAD]
