"""好差评: ratings of each service event and the follow-up of bad ratings (pure logic)."""
