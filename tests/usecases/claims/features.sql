-- Claims-cost features of every policy in force at the end of :as_of. The engine has
-- already cut `policies` and `claims` to what was known then.
SELECT
  p.insurer_id,
  p.policy_no,
  p.product,
  p.region,
  p.insured_value,
  datediff(:as_of, p.start_date) AS tenure_days,
  count(c.claim_id) AS claims_365d,
  coalesce(sum(CAST(c.amount AS DOUBLE)), 0.0) AS claimed_365d
FROM policies p
LEFT JOIN claims c
  ON c.insurer_id = p.insurer_id
 AND c.policy_no = p.policy_no
 AND c.reported_on > date_sub(:as_of, 365)
WHERE p.start_date <= :as_of
GROUP BY p.insurer_id, p.policy_no, p.product, p.region, p.insured_value, p.start_date
