-- The player's display name, as the game server shows it (optional): the gallery's cards and
-- download names use it, so that players can tell who drew what.
ALTER TABLE generated_images ADD COLUMN player_name text;
