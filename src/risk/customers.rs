//! The customers file: credit limits, one row per customer.
//!
//! ```text
//! customer,credit_limit
//! C-2001,5000.00
//! C-2002,
//! ```
//!
//! The header names the columns; `customer` and `credit_limit` are required, other columns
//! (a name, an account manager) are allowed and ignored. An empty `credit_limit` lifts the
//! customer's limit. `--customers FILE` loads it at start and `PUT /v1/customers` takes
//! the same rows (as CSV, or as a JSON array of `{"customer", "credit_limit"}`). A bad row
//! names its line and nothing of the file is taken.

use std::io::Read;

/// Most bytes of a customer id in the customers file (orders' customer ids are not
/// bounded, but one longer than this cannot be given a limit).
pub const MAX_CUSTOMER_BYTES: usize = 256;

/// One row: a customer's credit limit in cents, or `None` to lift it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize)]
pub struct CustomerLimit {
    pub customer: String,
    #[serde(deserialize_with = "limit_cents")]
    pub credit_limit: Option<i64>,
}

/// What is wrong with a customers file or body, and where.
#[derive(Debug, thiserror::Error)]
pub enum CustomersError {
    #[error("line {line}: {message}")]
    Row { line: u64, message: String },
    #[error("cannot read it: {0}")]
    Open(String),
    #[error("{0}")]
    Json(String),
}

/// The rows of a customers CSV.
pub fn read_csv(input: impl Read) -> Result<Vec<CustomerLimit>, CustomersError> {
    let mut csv = csv::ReaderBuilder::new()
        .has_headers(true)
        .trim(csv::Trim::All)
        .flexible(false)
        .from_reader(input);
    let header = csv
        .headers()
        .map_err(|error| CustomersError::Row {
            line: 1,
            message: error.to_string(),
        })?
        .clone();
    let column = |name: &str| {
        header
            .iter()
            .position(|column| column == name)
            .ok_or_else(|| CustomersError::Row {
                line: 1,
                message: format!(
                    "the header must name the columns customer and credit_limit, found '{}'",
                    header.iter().collect::<Vec<_>>().join(",")
                ),
            })
    };
    let (customer_at, limit_at) = (column("customer")?, column("credit_limit")?);
    let mut rows = Vec::new();
    for record in csv.records() {
        let record = record.map_err(|error| CustomersError::Row {
            line: error.position().map_or(0, |position| position.line()),
            message: error.to_string(),
        })?;
        let line = record.position().map_or(0, |position| position.line());
        let fail = |message: String| CustomersError::Row { line, message };
        let customer = customer_id(&record[customer_at]).map_err(fail)?;
        let credit_limit = parse_limit(&record[limit_at]).map_err(fail)?;
        rows.push(CustomerLimit {
            customer,
            credit_limit,
        });
    }
    Ok(rows)
}

/// The rows of the customers file at `path`.
pub fn read_file(path: &std::path::Path) -> Result<Vec<CustomerLimit>, CustomersError> {
    let file =
        std::fs::File::open(path).map_err(|error| CustomersError::Open(error.to_string()))?;
    read_csv(std::io::BufReader::new(file))
}

/// The rows of a JSON array of `{"customer": .., "credit_limit": ..}` (`null` lifts).
pub fn read_json(body: &[u8]) -> Result<Vec<CustomerLimit>, CustomersError> {
    let rows: Vec<CustomerLimit> =
        serde_json::from_slice(body).map_err(|error| CustomersError::Json(error.to_string()))?;
    for (index, row) in rows.iter().enumerate() {
        customer_id(&row.customer)
            .map_err(|message| CustomersError::Json(format!("row {index}: {message}")))?;
    }
    Ok(rows)
}

/// Writes `rows` as a customers CSV (quoting what needs it: a customer id may hold a
/// comma or a quote).
pub fn write_csv(rows: &[CustomerLimit]) -> Vec<u8> {
    let mut csv = csv::Writer::from_writer(Vec::new());
    let written: csv::Result<()> = (|| {
        csv.write_record(["customer", "credit_limit"])?;
        for row in rows {
            let limit = row.credit_limit.map(super::amount).unwrap_or_default();
            csv.write_record([row.customer.as_str(), limit.as_str()])?;
        }
        Ok(())
    })();
    written.expect("CSV into a Vec");
    csv.into_inner().expect("CSV into a Vec")
}

fn customer_id(text: &str) -> Result<String, String> {
    if text.is_empty() || text.len() > MAX_CUSTOMER_BYTES {
        return Err(format!(
            "customer must be 1 to {MAX_CUSTOMER_BYTES} bytes, got {} bytes",
            text.len()
        ));
    }
    if text.chars().any(char::is_control) {
        return Err(format!("customer {text:?} has a control character"));
    }
    if text.trim() != text {
        // The file's fields are trimmed: such an id could not be read back.
        return Err(format!("customer {text:?} starts or ends with white space"));
    }
    Ok(text.to_owned())
}

fn parse_limit(text: &str) -> Result<Option<i64>, String> {
    if text.is_empty() {
        return Ok(None);
    }
    let value: f64 = text
        .parse()
        .map_err(|_| format!("credit_limit must be a number, got {text:?}"))?;
    checked_limit(value).map(Some)
}

fn checked_limit(value: f64) -> Result<i64, String> {
    if !value.is_finite() || !(0.0..=1e13).contains(&value) {
        return Err(format!(
            "credit_limit must be between 0 and 10000000000000, got {value}"
        ));
    }
    Ok(super::cents(value))
}

fn limit_cents<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<i64>, D::Error> {
    let value: Option<f64> = serde::Deserialize::deserialize(deserializer)?;
    value
        .map(checked_limit)
        .transpose()
        .map_err(serde::de::Error::custom)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_with_extra_columns_and_a_lifted_limit_reads() {
        let rows = read_csv("name,customer,credit_limit\nAcme,C-1,5000.5\nBolt,C-2,\n".as_bytes())
            .unwrap();
        assert_eq!(
            rows,
            vec![
                CustomerLimit {
                    customer: "C-1".into(),
                    credit_limit: Some(500_050)
                },
                CustomerLimit {
                    customer: "C-2".into(),
                    credit_limit: None
                },
            ]
        );
    }

    #[test]
    fn a_bad_row_names_its_line() {
        let error = read_csv("customer,credit_limit\nC-1,10\nC-2,lots\n".as_bytes()).unwrap_err();
        assert_eq!(
            error.to_string(),
            "line 3: credit_limit must be a number, got \"lots\""
        );
        let error = read_csv("customer,limit\nC-1,10\n".as_bytes()).unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("line 1: the header must name"),
            "{error}"
        );
        let error = read_csv("customer,credit_limit\nC-1,-5\n".as_bytes()).unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("line 2: credit_limit must be between"),
            "{error}"
        );
    }

    #[test]
    fn json_rows_read_and_are_checked() {
        let rows = read_json(
            br#"[{"customer":"C-1","credit_limit":12.34},{"customer":"C-2","credit_limit":null}]"#,
        )
        .unwrap();
        assert_eq!(rows[0].credit_limit, Some(1234));
        assert_eq!(rows[1].credit_limit, None);
        assert!(read_json(br#"[{"customer":"","credit_limit":1}]"#).is_err());
        assert!(read_json(br#"[{"customer":"C","credit_limit":-1}]"#).is_err());
    }
}

#[cfg(test)]
mod writing {
    use super::*;

    #[test]
    fn what_is_written_reads_back_whatever_the_id_holds() {
        let rows = vec![
            CustomerLimit {
                customer: "ACME, Inc \"east\"".into(),
                credit_limit: Some(12_345),
            },
            CustomerLimit {
                customer: "C-2".into(),
                credit_limit: None,
            },
        ];
        assert_eq!(read_csv(write_csv(&rows).as_slice()).unwrap(), rows);
        assert!(read_json(br#"[{"customer":" C-1","credit_limit":1}]"#).is_err());
    }
}
