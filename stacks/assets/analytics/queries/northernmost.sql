-- Airports north of 60 degrees (Alaska), northernmost first.
SELECT iata_code, airport, city, latitude
FROM default.airports
WHERE latitude > 60
ORDER BY latitude DESC
