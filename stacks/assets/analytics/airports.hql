-- The airports table over the CSV files under one S3 prefix (the shipped sample, or the full
-- file put at the same prefix): comma-separated, unquoted, one header line.
-- Run by the EMR step: hive --hivevar location=s3://<datasets>/tables/airports/ -f airports.hql
CREATE EXTERNAL TABLE IF NOT EXISTS default.airports (
  iata_code STRING COMMENT 'IATA airport code',
  airport STRING COMMENT 'airport name',
  city STRING,
  state STRING COMMENT 'two-letter state or territory code',
  country STRING,
  latitude DOUBLE COMMENT 'degrees north (WGS 84)',
  longitude DOUBLE COMMENT 'degrees east (WGS 84); negative in the US'
)
COMMENT 'US airports (iata_code, airport, city, state, country, latitude, longitude)'
ROW FORMAT DELIMITED FIELDS TERMINATED BY ','
STORED AS TEXTFILE
LOCATION '${hivevar:location}'
TBLPROPERTIES ('skip.header.line.count' = '1');
