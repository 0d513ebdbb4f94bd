// Enterprise identifiers, checked exactly as the server checks them
// (libs/common/ecips_common/identifiers.py): the same normalisation, the same order of
// checks and the same error codes; the messages are Chinese. A test compares the two
// over hundreds of valid and corrupted codes.

export const USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY";
const USCC_WEIGHTS = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28];
const ORG_CODE_CHARS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
const ORG_CODE_WEIGHTS = [3, 7, 9, 10, 5, 8, 4, 2];
const DIGITS = "0123456789";
// What Python's str.strip() removes (str.isspace), no more and no less.
const PY_WHITESPACE = new Set(
  [0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x1c, 0x1d, 0x1e, 0x1f, 0x20, 0x85, 0xa0, 0x1680,
    0x2000, 0x2001, 0x2002, 0x2003, 0x2004, 0x2005, 0x2006, 0x2007, 0x2008, 0x2009, 0x200a,
    0x2028, 0x2029, 0x202f, 0x205f, 0x3000],
);

export class IdentifierError extends Error {
  constructor(code, message) {
    super(message);
    this.code = code;
  }
}

/** Full-width to ASCII, surrounding whitespace stripped, ASCII letters upper-cased. */
export function normalizeIdentifier(value) {
  const chars = Array.from(String(value), (char) => {
    const point = char.codePointAt(0);
    if (point >= 0xff01 && point <= 0xff5e) return String.fromCodePoint(point - 0xfee0);
    if (point === 0x3000) return " ";
    return char;
  });
  let start = 0;
  let end = chars.length;
  while (start < end && PY_WHITESPACE.has(chars[start].codePointAt(0))) start += 1;
  while (end > start && PY_WHITESPACE.has(chars[end - 1].codePointAt(0))) end -= 1;
  return chars
    .slice(start, end)
    .map((char) => (char >= "a" && char <= "z" ? char.toUpperCase() : char))
    .join("");
}

function shown(char) {
  const point = char.codePointAt(0);
  return point < 0x20 || point === 0x7f ? `U+${point.toString(16).toUpperCase().padStart(4, "0")}` : `“${char}”`;
}

export function orgCodeCheckCharacter(body8) {
  let total = 0;
  Array.from(body8).forEach((char, index) => {
    total += ORG_CODE_CHARS.indexOf(char) * ORG_CODE_WEIGHTS[index];
  });
  const check = 11 - (total % 11);
  if (check === 10) return "X";
  if (check === 11) return "0";
  return String(check);
}

export function usccCheckCharacter(first17) {
  let total = 0;
  Array.from(first17).forEach((char, index) => {
    total += USCC_ALPHABET.indexOf(char) * USCC_WEIGHTS[index];
  });
  return USCC_ALPHABET[(31 - (total % 31)) % 31];
}

/** The normalised USCC, or throws IdentifierError (invalid_length, invalid_character,
 * invalid_org_code_check, invalid_check_character, in that order). */
export function validateUscc(value) {
  const code = normalizeIdentifier(value);
  const chars = Array.from(code);
  if (chars.length !== 18) {
    throw new IdentifierError("invalid_length", `统一社会信用代码应为18位，现为${chars.length}位`);
  }
  chars.forEach((char, index) => {
    const position = index + 1;
    if (position >= 3 && position <= 8) {
      if (!DIGITS.includes(char)) {
        throw new IdentifierError(
          "invalid_character",
          `第${position}位${shown(char)}不允许：第3至8位（行政区划码）只能是数字`,
        );
      }
    } else if (char.length !== 1 || !USCC_ALPHABET.includes(char)) {
      throw new IdentifierError(
        "invalid_character",
        `第${position}位${shown(char)}不允许：只能是数字和除 I、O、S、V、Z 以外的大写字母`,
      );
    }
  });
  const expectedOrg = orgCodeCheckCharacter(code.slice(8, 16));
  if (code[16] !== expectedOrg) {
    throw new IdentifierError(
      "invalid_org_code_check",
      `第17位（组织机构代码校验码）应为“${expectedOrg}”，现为“${code[16]}”`,
    );
  }
  const expected = usccCheckCharacter(code.slice(0, 17));
  if (code[17] !== expected) {
    throw new IdentifierError("invalid_check_character", `第18位（校验码）应为“${expected}”，现为“${code[17]}”`);
  }
  return code;
}

function mod11_10(digits) {
  let p = 10;
  for (const char of digits) {
    let s = (p + Number(char)) % 10;
    if (s === 0) s = 10;
    p = (s * 2) % 11;
  }
  return String((11 - p) % 10);
}

/** The normalised 15-digit registration number, or throws IdentifierError
 * (invalid_length, invalid_character, invalid_check_digit). */
export function validateRegistrationNumber(value) {
  const number = normalizeIdentifier(value);
  const chars = Array.from(number);
  if (chars.length !== 15) {
    throw new IdentifierError("invalid_length", `工商注册号应为15位，现为${chars.length}位`);
  }
  chars.forEach((char, index) => {
    if (char.length !== 1 || !DIGITS.includes(char)) {
      throw new IdentifierError("invalid_character", `第${index + 1}位${shown(char)}不允许：只能是数字`);
    }
  });
  const expected = mod11_10(number.slice(0, 14));
  if (number[14] !== expected) {
    throw new IdentifierError("invalid_check_digit", `第15位（校验位）应为“${expected}”，现为“${number[14]}”`);
  }
  return number;
}

/** {ok, value} or {ok: false, code, message}: for checking as the user types. */
export function checkIdentifier(kind, value) {
  try {
    const normalised = kind === "uscc" ? validateUscc(value) : validateRegistrationNumber(value);
    return { ok: true, value: normalised };
  } catch (error) {
    if (error instanceof IdentifierError) return { ok: false, code: error.code, message: error.message };
    throw error;
  }
}
