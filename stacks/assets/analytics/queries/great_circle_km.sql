-- Great-circle distance (haversine, mean Earth radius 6371 km) between two airports.
SELECT a.iata_code AS origin, b.iata_code AS destination,
       2 * 6371 * ASIN(SQRT(
         POWER(SIN(RADIANS(b.latitude - a.latitude) / 2), 2)
         + COS(RADIANS(a.latitude)) * COS(RADIANS(b.latitude))
           * POWER(SIN(RADIANS(b.longitude - a.longitude) / 2), 2))) AS distance_km
FROM default.airports AS a
CROSS JOIN default.airports AS b
WHERE a.iata_code = 'JFK' AND b.iata_code = 'LAX'
