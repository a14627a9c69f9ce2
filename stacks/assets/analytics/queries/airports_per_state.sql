-- The states with the most airports.
SELECT state, COUNT(*) AS airports
FROM default.airports
WHERE country = 'USA'
GROUP BY state
ORDER BY airports DESC, state
LIMIT 10
